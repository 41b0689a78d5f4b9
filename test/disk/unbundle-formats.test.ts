// `unbundle --format`: the golden ec2-ami-tools bundles and a real ext4 image bundled by amibundle,
// restored straight into each disk format, read back by qemu-img as the same bytes as the raw
// restore; and a format that does not exist is one usage line.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiskFormat } from '../../src/disk/image-sink.js';
import { runCli } from '../support/cli.js';
import { bundledCases, keysDir, tempDir } from '../support/fixtures.js';
import { expectCheckClean, expectSameAsRaw, FORMATS, qemuInfo } from './qemu.js';

let tmp: { dir: string; remove: () => void };
const userKey = path.join(keysDir, 'user-key.pem');
const userCert = path.join(keysDir, 'user-cert.pem');
const ec2Cert = path.join(keysDir, 'ec2-cert.pem');

interface Bundle {
  readonly label: string;
  readonly manifest: string;
  readonly name: string;
  /** The raw restore (unbundle without --format), what every format must read back as. */
  raw: string;
}
const bundles: Bundle[] = [];

async function unbundle(b: Bundle, dest: string, extra: string[] = []): Promise<void> {
  const r = await runCli('amibundle', [
    'unbundle',
    '-m',
    b.manifest,
    '-k',
    userKey,
    '-s',
    path.dirname(b.manifest),
    '-d',
    dest,
    '--cert',
    userCert,
    ...extra,
  ]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

/** A 64 MiB sparse ext4 filesystem holding a few files, made by mkfs.ext4 -d (no mount needed). */
function ext4Image(dir: string): string {
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc', 'hostname'), 'rescued\n');
  fs.writeFileSync(
    path.join(tree, 'random.bin'),
    Buffer.from(Array.from({ length: 3 << 20 }, (_, i) => (i * 7919) % 251)),
  );
  fs.writeFileSync(path.join(tree, 'zeros.bin'), Buffer.alloc(2 << 20));
  fs.symlinkSync('etc/hostname', path.join(tree, 'link'));
  const image = path.join(dir, 'rootfs.img');
  fs.closeSync(fs.openSync(image, 'w'));
  fs.truncateSync(image, 64 << 20);
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', tree, image]);
  return image;
}

/** The VHD footer: type 3 (dynamic, with its copy in front) or 2 (fixed), and a valid checksum. */
function expectVhdFooter(file: string, format: 'vhd' | 'vhd-fixed'): void {
  const all = fs.readFileSync(file);
  const footer = all.subarray(all.length - 512);
  expect(footer.toString('latin1', 0, 8)).toBe('conectix');
  expect(footer.readUInt32BE(60)).toBe(format === 'vhd' ? 3 : 2);
  let sum = 0;
  for (let i = 0; i < 512; i++) if (i < 64 || i >= 68) sum += footer[i]!;
  expect(footer.readUInt32BE(64)).toBe(~sum >>> 0);
  if (format === 'vhd') expect(all.subarray(0, 512)).toEqual(footer);
  else expect(all.toString('latin1', 0, 8)).not.toBe('conectix');
}

beforeAll(async () => {
  tmp = tempDir('disk-formats');
  for (const c of bundledCases()) {
    const manifest = path.join(c.dir, c.expected!.manifest_file);
    bundles.push({ label: c.case, manifest, name: c.expected!.name, raw: '' });
  }
  const work = path.join(tmp.dir, 'ext4');
  const bundleDir = path.join(work, 'bundle');
  fs.mkdirSync(bundleDir, { recursive: true });
  const image = ext4Image(work);
  const r = await runCli('ec2-bundle-image', [
    '-i',
    image,
    '-d',
    bundleDir,
    '-k',
    userKey,
    '-c',
    userCert,
    '-u',
    '123456789012',
    '--ec2cert',
    ec2Cert,
    '-r',
    'x86_64',
    '--batch',
  ]);
  expect(r.code, r.stderr).toBe(0);
  bundles.push({
    label: 'ext4',
    manifest: path.join(bundleDir, 'rootfs.img.manifest.xml'),
    name: 'rootfs.img',
    raw: '',
  });
  for (const b of bundles) {
    const dest = fs.mkdtempSync(path.join(tmp.dir, `${b.label}-raw-`));
    await unbundle(b, dest);
    b.raw = path.join(dest, b.name);
  }
});
afterAll(() => tmp.remove());

const SUFFIX: Record<Exclude<DiskFormat, 'raw'>, string> = {
  qcow2: '.qcow2',
  vmdk: '.vmdk',
  vhd: '.vhd',
  'vhd-fixed': '.vhd',
};

describe.each(FORMATS)('unbundle --format %s', (format) => {
  it('restores every golden bundle and a real ext4 image as the raw restore reads', async () => {
    expect(bundles.length).toBeGreaterThanOrEqual(7);
    for (const b of bundles) {
      const dest = fs.mkdtempSync(path.join(tmp.dir, `${b.label}-${format}-`));
      await unbundle(b, dest, ['--format', format]);
      const out = path.join(dest, b.name + SUFFIX[format]);
      expect(fs.readdirSync(dest)).toEqual([path.basename(out)]);
      expectCheckClean(format, out);
      expectSameAsRaw(format, b.raw, out);
      const info = qemuInfo(format, out);
      expect(info.format).toBe(format === 'qcow2' ? 'qcow2' : format === 'vmdk' ? 'vmdk' : 'vpc');
      if (format === 'qcow2') expect(info['format-specific']?.data['compat']).toBe('1.1');
      if (format === 'vmdk') expect(info['format-specific']?.data['create-type']).toBe('streamOptimized');
      if (format === 'vhd' || format === 'vhd-fixed') expectVhdFooter(out, format);
    }
  });
});

describe('unbundle --format refusals', () => {
  it('a digest mismatch, found after every byte was written, leaves nothing in any format', async () => {
    const c = bundledCases().find((x) => x.case === 'b-sparse')!;
    const bundleDir = fs.mkdtempSync(path.join(tmp.dir, 'bad-digest-'));
    const original = path.join(c.dir, c.expected!.manifest_file);
    for (const f of fs.readdirSync(path.dirname(original)))
      fs.copyFileSync(path.join(path.dirname(original), f), path.join(bundleDir, f));
    const manifest = path.join(bundleDir, path.basename(original));
    const xml = fs.readFileSync(manifest, 'utf8');
    // The image digest is the first <digest>; the parts' follow.
    const altered = xml.replace(
      /(<digest algorithm='SHA1'>)([0-9a-f]{40})/,
      (_m, open: string) => `${open}${'0'.repeat(40)}`,
    );
    expect(altered).not.toBe(xml);
    fs.writeFileSync(manifest, altered);
    for (const format of FORMATS) {
      const dest = fs.mkdtempSync(path.join(tmp.dir, `bad-digest-${format}-`));
      const r = await runCli('amibundle', [
        'unbundle',
        '-m',
        manifest,
        '-k',
        userKey,
        '-s',
        bundleDir,
        '-d',
        dest,
        '--format',
        format,
        // The altered manifest no longer matches its signature: skip that check to reach the digest.
        '--no-signature-check',
      ]);
      expect(r.code).toBe(254);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^ERROR: invalid digest/);
      expect(fs.readdirSync(dest)).toEqual([]);
    }
  });

  it('an unknown format is one usage line, exit 1, nothing written', async () => {
    const b = bundles[0]!;
    const dest = fs.mkdtempSync(path.join(tmp.dir, 'bad-format-'));
    const r = await runCli('amibundle', [
      'unbundle',
      '-m',
      b.manifest,
      '-k',
      userKey,
      '-s',
      path.dirname(b.manifest),
      '-d',
      dest,
      '--format',
      'foo',
    ]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/--format.*'foo'.*raw, qcow2, vmdk, vhd, vhd-fixed/);
    expect(fs.readdirSync(dest)).toEqual([]);
  });
});
