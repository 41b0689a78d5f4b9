// The single executable (`npm run build:sea` → dist/amibundle-linux-x64) as a build instance without
// Node or npm uses it: copied alone into an empty directory, its drop-in links made by
// `install-links`, a bundle → unbundle round trip through it, and Packer's two command lines
// (ec2-bundle-vol, then ec2-upload-bundle) through the links against the real radosgw.
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysDir, projectRoot, tempDir } from '../support/fixtures.js';
import { startRadosgw, type Radosgw } from '../support/radosgw.js';

const MiB = 1024 ** 2;
const isRoot = process.getuid?.() === 0;
const key = path.join(keysDir, 'user-key.pem');
const cert = path.join(keysDir, 'user-cert.pem');

let tmp: { dir: string; remove: () => void };
/** A directory holding only the executable and its links. */
let binDir: string;
let gw: Radosgw | undefined;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program from binDir with a PATH that has no node in it. */
function run(program: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const child = spawn(path.join(binDir, program), args, {
    cwd: tmp.dir,
    env: { PATH: `${binDir}:/usr/sbin:/sbin:/bin`, TMPDIR: tmp.dir, HOME: tmp.dir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

beforeAll(async () => {
  tmp = tempDir('sea');
  // `npm run build:sea` without its tsc step: the vitest setup built dist/ already, and rebuilding
  // it could cut a file short under a test running beside this one.
  for (const script of ['prebuild.mjs', 'build-sea.mjs'])
    await promisify(execFile)(process.execPath, [path.join(projectRoot, 'scripts', script)], {
      cwd: projectRoot,
      maxBuffer: 64 * MiB,
    });
  binDir = path.join(tmp.dir, 'bin');
  fs.mkdirSync(binDir);
  fs.copyFileSync(path.join(projectRoot, 'dist', 'amibundle-linux-x64'), path.join(binDir, 'amibundle'));
  fs.chmodSync(path.join(binDir, 'amibundle'), 0o755);
  gw = await startRadosgw();
}, 900_000);

afterAll(async () => {
  await gw?.stop();
  tmp?.remove();
});

describe('the single executable', () => {
  it('install-links makes every drop-in name, each pointing at the executable', async () => {
    const r = await run('amibundle', ['install-links', binDir]);
    expect(r.code, r.stderr).toBe(0);
    for (const tool of ['ec2-bundle-image', 'ec2-bundle-vol', 'ec2-unbundle', 'ec2-upload-bundle'])
      expect(fs.readlinkSync(path.join(binDir, tool))).toBe(path.join(binDir, 'amibundle'));
    const again = await run('amibundle', ['install-links', binDir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^ERROR: install-links: .*ec2-bundle-image.* already exist.*--force/);
    const v = await run('ec2-ami-tools-version', []);
    expect(v.stdout.split('\n')[0]).toBe('1.5.3 20071010');
  });

  it('loads its own addon (doctor), and leaves no private files behind', async () => {
    const before = fs.readdirSync(tmp.dir).filter((f) => f.startsWith('amibundle-sea-'));
    const r = await run('amibundle', ['doctor', '--json']);
    const speed = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { name?: string; status?: string })
      .find((e) => e.name === 'speed');
    expect(speed, r.stdout).toMatchObject({ status: 'ok' });
    expect(fs.readdirSync(tmp.dir).filter((f) => f.startsWith('amibundle-sea-'))).toEqual(before);
  });

  it('bundle-image then unbundle through the links: the image comes back byte for byte', async () => {
    const image = path.join(tmp.dir, 'disk.img');
    fs.writeFileSync(image, Buffer.concat([crypto.randomBytes(2 * MiB), Buffer.alloc(MiB)]));
    const dest = path.join(tmp.dir, 'bundle');
    fs.mkdirSync(dest);
    const b = await run('ec2-bundle-image', [
      '-i',
      image,
      '-k',
      key,
      '-c',
      cert,
      '-u',
      '123456789012',
      '-r',
      'x86_64',
      '-d',
      dest,
      '--batch',
    ]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toContain('ec2-bundle-image complete.');
    const out = path.join(tmp.dir, 'restored');
    fs.mkdirSync(out);
    const u = await run('ec2-unbundle', [
      '-m',
      path.join(dest, 'disk.img.manifest.xml'),
      '-k',
      key,
      '-s',
      dest,
      '-d',
      out,
    ]);
    expect(u.code, u.stderr).toBe(0);
    expect(sha256(path.join(out, 'disk.img'))).toBe(sha256(image));
  });

  it('a zstd bundle is refused with one line saying the executable carries no zstd', async () => {
    const image = path.join(tmp.dir, 'zstd.img');
    fs.writeFileSync(image, crypto.randomBytes(MiB));
    const dest = path.join(tmp.dir, 'zstd-bundle');
    fs.mkdirSync(dest);
    const args = ['-i', image, '-k', key, '-c', cert, '-u', '123456789012', '-r', 'x86_64', '-d', dest];
    const r = await run('ec2-bundle-image', [...args, '--compress', 'zstd', '--batch']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('the single executable carries no zstd');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(fs.readdirSync(dest)).toEqual([]);
  });

  it.runIf(isRoot)(
    "Packer's ec2-bundle-vol and ec2-upload-bundle lines through the links, to radosgw",
    async () => {
      // A small system tree stands in for the build instance's root (-v); the key and certificate
      // sit in its /tmp, which Packer excludes with -e.
      const root = path.join(tmp.dir, 'root');
      fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
      fs.mkdirSync(path.join(root, 'tmp'));
      fs.writeFileSync(path.join(root, 'etc', 'hostname'), 'packer\n');
      fs.writeFileSync(path.join(root, 'etc', 'fstab'), 'LABEL=root / ext4 defaults 0 1\n');
      fs.copyFileSync(key, path.join(root, 'tmp', 'pk.pem'));
      fs.copyFileSync(cert, path.join(root, 'tmp', 'cert.pem'));
      const dest = path.join(tmp.dir, 'packer');
      fs.mkdirSync(dest);
      // ec2-bundle-vol -k {{.KeyPath}} -u {{.AccountId}} -c {{.CertPath}} -r {{.Architecture}}
      //   -e {{.PrivatePath}}/* -d {{.Destination}} -p {{.Prefix}} --batch --no-filter
      const vol = await run('ec2-bundle-vol', [
        '-k',
        path.join(root, 'tmp', 'pk.pem'),
        '-u',
        '123456789012',
        '-c',
        path.join(root, 'tmp', 'cert.pem'),
        '-r',
        'x86_64',
        '-e',
        path.join(root, 'tmp'),
        '-d',
        dest,
        '-p',
        'packer-image',
        '--batch',
        '--no-filter',
        '-v',
        root,
        '--no-inherit',
      ]);
      expect(vol.code, vol.stderr).toBe(0);
      expect(vol.stdout.trim().split('\n').pop()).toBe('ec2-bundle-vol complete.');
      const manifest = path.join(dest, 'packer-image.manifest.xml');
      // ec2-upload-bundle -b {{.BucketName}} -m {{.ManifestPath}} -a {{.AccessKey}} -s {{.SecretKey}}
      //   -d {{.BundleDirectory}} --batch --region {{.Region}} --retry
      const up = await run(
        'ec2-upload-bundle',
        [
          '-b',
          'sea-packer',
          '-m',
          manifest,
          '-a',
          gw!.accessKey,
          '-s',
          gw!.secretKey,
          '-d',
          dest,
          '--batch',
          '--region',
          'us-east-1',
          '--retry',
        ],
        { AWS_ENDPOINT_URL_S3: gw!.endpoint, AMIBUNDLE_S3_ACL: 'public-read' },
      );
      expect(up.code, up.stderr).toBe(0);
      expect(up.stdout.trimEnd().split('\n').pop()).toBe('Bundle upload completed.');
      const parts = fs.readdirSync(dest).filter((f) => f.startsWith('packer-image.part.'));
      expect(await gw!.listKeys('sea-packer')).toEqual(['packer-image.manifest.xml', ...parts].sort());
      expect(sha256(path.join(dest, parts[0]!))).toBe(
        crypto
          .createHash('sha256')
          .update(await gw!.getObject('sea-packer', parts[0]!))
          .digest('hex'),
      );
    },
  );
});
