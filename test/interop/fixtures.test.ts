// The golden bundles written by the real ec2-bundle-image restore with amibundle, byte-identical
// with their holes; and amibundle, given the same image and flags, produces the same tar stream
// (the manifest <digest> is its SHA-1) and the same manifest facts.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { dataExtents } from '../../src/io/extents.js';
import { runCli } from '../support/cli.js';
import {
  allCases,
  bundledCases,
  keysDir,
  regenerateImage,
  tempDir,
  type FixtureCase,
} from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('fixtures');
});
afterAll(() => tmp.remove());

const userKey = path.join(keysDir, 'user-key.pem');
const userCert = path.join(keysDir, 'user-cert.pem');
const ec2Key = path.join(keysDir, 'ec2-key.pem');
const ec2Cert = path.join(keysDir, 'ec2-cert.pem');

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function dataMap(file: string): Promise<[number, number][]> {
  const fd = fs.openSync(file, 'r');
  try {
    return (await dataExtents(fd, fs.fstatSync(fd).size)).map((e) => [e.offset, e.length]);
  } finally {
    fs.closeSync(fd);
  }
}

function roundtripMap(c: FixtureCase): [number, number][] | undefined {
  const raw = JSON.parse(fs.readFileSync(path.join(c.dir, 'case.json'), 'utf8')) as {
    unbundle_roundtrip?: { data_map?: [number, number][] };
  };
  return raw.unbundle_roundtrip?.data_map;
}

describe('ec2-ami-tools bundles restore with amibundle', () => {
  for (const c of bundledCases()) {
    it(`${c.case}: ec2-unbundle restores the exact image, holes kept, signature checked`, async () => {
      const dest = fs.mkdtempSync(path.join(tmp.dir, `${c.case}-`));
      const manifest = path.join(c.dir, c.expected!.manifest_file);
      const r = await runCli('ec2-unbundle', [
        '-m',
        manifest,
        '-k',
        userKey,
        '-s',
        path.dirname(manifest),
        '-d',
        dest,
        '--cert',
        userCert,
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Unbundle complete.');
      const out = path.join(dest, c.expected!.name);
      expect(fs.readdirSync(dest)).toEqual([c.expected!.name]);
      expect(sha256(out)).toBe(c.image.sha256);
      const st = fs.statSync(out);
      expect(st.size).toBe(c.image.size);
      expect(st.mode & 0o777).toBe(parseInt(c.image.mode, 8));
      expect(Math.floor(st.mtimeMs / 1000)).toBe(c.image.mtime);
      if (c.image.sparse) expect(await dataMap(out)).toEqual(roundtripMap(c));
      // Never more data than the original held: holes are kept, not filled.
      expect(st.blocks * 512).toBeLessThanOrEqual(Math.ceil(c.image.size / 4096) * 4096);
    });
  }

  it('the EC2 copy of the key unwraps with --ec2-key', async () => {
    const c = bundledCases().find((x) => x.case === 'c-multipart')!;
    const dest = fs.mkdtempSync(path.join(tmp.dir, 'ec2key-'));
    const manifest = path.join(c.dir, c.expected!.manifest_file);
    const r = await runCli('amibundle', [
      'unbundle',
      '-m',
      manifest,
      '-k',
      ec2Key,
      '--ec2-key',
      '-s',
      path.dirname(manifest),
      '-d',
      dest,
    ]);
    expect(r.code).toBe(0);
    expect(sha256(path.join(dest, c.expected!.name))).toBe(c.image.sha256);
  });

  it('a signature check against the wrong certificate fails and writes nothing', async () => {
    const c = bundledCases()[0]!;
    const dest = fs.mkdtempSync(path.join(tmp.dir, 'badsig-'));
    const manifest = path.join(c.dir, c.expected!.manifest_file);
    const r = await runCli('ec2-unbundle', [
      '-m',
      manifest,
      '-k',
      userKey,
      '-s',
      path.dirname(manifest),
      '-d',
      dest,
      '--cert',
      ec2Cert,
    ]);
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/^ERROR: the manifest signature does not verify/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.readdirSync(dest)).toEqual([]);
  });

  it('verify reports every check of a fixture bundle', async () => {
    const c = bundledCases().find((x) => x.case === 'b-sparse')!;
    const manifest = path.join(c.dir, c.expected!.manifest_file);
    const r = await runCli('amibundle', ['verify', '-m', manifest, '-k', userKey, '-c', userCert]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`signature: verified with --cert ${userCert}`);
    expect(r.stdout).toContain(`digest ${c.expected!.tar.sha1}`);
  });
});

describe('amibundle bundles the fixture images like ec2-bundle-image', () => {
  for (const c of bundledCases()) {
    it(`${c.case}: same tar digest and manifest facts, and it restores`, async () => {
      const work = fs.mkdtempSync(path.join(tmp.dir, `bundle-${c.case}-`));
      const image = regenerateImage(c, work);
      const dest = path.join(work, 'bundle');
      fs.mkdirSync(dest);
      // The case's own argv, with paths made absolute and the tar bytes taken as GNU tar does.
      const argv = c.bundle.argv.map((a) => (a.startsWith('../keys/') ? path.join(keysDir, a.slice(8)) : a));
      const i = argv.indexOf('-i');
      argv[i + 1] = image;
      argv[argv.indexOf('-d') + 1] = dest;
      const r = await runCli('ec2-bundle-image', [...argv, '--sparse', 'fs']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('ec2-bundle-image complete.');
      const ours = parseManifest(
        fs.readFileSync(path.join(dest, `${c.expected!.name}.manifest.xml`)),
      ).manifest;
      const theirs = parseManifest(fs.readFileSync(path.join(c.dir, c.expected!.manifest_file))).manifest;
      expect(ours.image.digest).toBe(c.expected!.tar.sha1);
      expect(ours.image.name).toBe(theirs.image.name);
      expect(ours.image.user).toBe(theirs.image.user);
      expect(ours.image.size).toBe(theirs.image.size);
      expect(ours.machineConfiguration).toEqual(theirs.machineConfiguration);
      expect(fs.readdirSync(dest).sort()).toEqual(
        [`${c.expected!.name}.manifest.xml`, ...ours.image.parts.map((p) => p.filename)].sort(),
      );
      const restored = fs.mkdtempSync(path.join(work, 'restored-'));
      const u = await runCli('ec2-unbundle', [
        '-m',
        path.join(dest, `${c.expected!.name}.manifest.xml`),
        '-k',
        userKey,
        '-s',
        dest,
        '-d',
        restored,
        '--cert',
        userCert,
      ]);
      expect(u.code).toBe(0);
      expect(sha256(path.join(restored, c.expected!.name))).toBe(c.image.sha256);
    });
  }

  it('e-empty: a zero-sized image is refused like the reference, nothing written', async () => {
    const c = allCases().find((x) => x.case === 'e-empty')!;
    const dest = fs.mkdtempSync(path.join(tmp.dir, 'empty-'));
    const r = await runCli('ec2-bundle-image', [
      '--batch',
      '-i',
      path.join(c.dir, 'empty.img'),
      '-k',
      userKey,
      '-c',
      userCert,
      '-u',
      '123456789012',
      '--ec2cert',
      ec2Cert,
      '-d',
      dest,
      '-r',
      'x86_64',
      '--no-size-checks',
    ]);
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/^ERROR: the specified image .*empty\.img is zero sized/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.readdirSync(dest)).toEqual([]);
  });
});
