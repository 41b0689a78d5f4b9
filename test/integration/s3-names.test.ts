// download-bundle and delete-bundle touch only the manifest and parts named NAME.part.N after it:
// a manifest listing any other object (.profile, authorized_keys) is refused before any part is
// fetched or deleted, and nothing in the download directory changes. Against a real radosgw.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { craftBundle, tarOfMembers } from '../support/craft-bundle.js';
import { bundledCases, tempDir } from '../support/fixtures.js';
import { startRadosgw, type Radosgw } from '../support/radosgw.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const fixture = bundledCases().find((c) => c.case === 'c-multipart')!;
const fixtureManifest = path.join(fixture.dir, fixture.expected!.manifest_file);

let gw: Radosgw;
let work: { dir: string; remove: () => void };
const bucket = 'names';

beforeAll(async () => {
  gw = await startRadosgw();
  work = tempDir('s3-names');
  const up = await runCli('ec2-upload-bundle', [
    '-b',
    bucket,
    '-m',
    fixtureManifest,
    '--url',
    gw.endpoint,
    '-a',
    gw.accessKey,
    '-s',
    gw.secretKey,
    '--acl',
    'public-read',
  ]);
  expect(up.code, up.stderr).toBe(0);
  await gw.putObject(bucket, '.profile', Buffer.from('remote profile\n'));
  await gw.putObject(bucket, 'authorized_keys', Buffer.from('ssh-rsa AAAA attacker\n'));
  // A manifest (signed, well-formed) whose parts are named after other objects.
  const crafted = path.join(work.dir, 'crafted');
  fs.mkdirSync(crafted);
  const tar = tarOfMembers([{ info: { name: 'evil', mode: 0o644, mtime: 0, size: 1024 } }]);
  const manifest = craftBundle(crafted, 'evil', tar, {
    partSize: 16 * 64,
    partNames: (i) => ['.profile', 'authorized_keys'][i] ?? `x${i}`,
  });
  await gw.putObject(bucket, 'evil.manifest.xml', fs.readFileSync(manifest));
}, 240_000);

afterAll(async () => {
  await gw?.stop();
  work?.remove();
});

const before = async (): Promise<string[]> => (await gw.listKeys(bucket)).sort();

describe('part names not of the bundle are refused before any part request', () => {
  it('download-bundle: exit 254, one line, no part fetched, the directory unchanged', async () => {
    const down = path.join(work.dir, 'down');
    fs.mkdirSync(down);
    fs.writeFileSync(path.join(down, '.profile'), 'mine\n');
    const proxy = new TcpProxy(gw.port);
    await proxy.start();
    try {
      const r = await runCli('ec2-download-bundle', [
        '-b',
        bucket,
        '-m',
        'evil.manifest.xml',
        '-d',
        down,
        '--url',
        proxy.endpoint,
        '-a',
        gw.accessKey,
        '-s',
        gw.secretKey,
      ]);
      expect(r.code, r.stdout).toBe(254);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/invalid manifest: part 0 is named '\.profile', not evil\.part\.0/);
      expect(proxy.count('GET', `/${bucket}/.profile`)).toBe(0);
      expect(proxy.count('GET', `/${bucket}/authorized_keys`)).toBe(0);
    } finally {
      await proxy.close();
    }
    expect(fs.readdirSync(down)).toEqual(['.profile']);
    expect(fs.readFileSync(path.join(down, '.profile'), 'utf8')).toBe('mine\n');
  });

  it('delete-bundle: exit 254, one line, nothing deleted', async () => {
    const keys = await before();
    const r = await runCli('ec2-delete-bundle', [
      '-b',
      bucket,
      '-m',
      'evil.manifest.xml',
      '--batch',
      '--url',
      gw.endpoint,
      '-a',
      gw.accessKey,
      '-s',
      gw.secretKey,
    ]);
    expect(r.code, r.stdout).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/invalid manifest: part 0 is named '\.profile'/);
    expect(await before()).toEqual(keys);
    expect(keys).toContain('.profile');
    expect(keys).toContain('authorized_keys');
  });
});

describe('control characters in names reach no terminal, the delete prompt included', () => {
  it('a local manifest file named with ESC and BEL: the list and the prompt are escaped', async () => {
    const dir = path.join(work.dir, 'ctl');
    fs.mkdirSync(dir);
    const local = path.join(dir, 'multipart.img\u001b[2J\u0007.manifest.xml');
    fs.copyFileSync(fixtureManifest, local);
    const keys = await before();
    const r = await runCli('ec2-delete-bundle', [
      '-b',
      `${bucket}/pre\u001b]0;t\u0007fix`,
      '-m',
      local,
      '--url',
      gw.endpoint,
      '-a',
      gw.accessKey,
      '-s',
      gw.secretKey,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Nothing deleted.');
    const all = r.stdout + r.stderr;
    expect(all).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    expect(r.stdout).toContain('   - multipart.img\\x1b[2J\\x07.manifest.xml');
    expect(r.stderr).toMatch(/objects will be deleted from s3:\/\/names\/pre\\x1b\]0;t\\x07fix/);
    expect(await before()).toEqual(keys);
  });
});
