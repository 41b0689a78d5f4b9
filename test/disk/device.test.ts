// `unbundle --device`: a real ext4 image bundled by amibundle, restored onto loop devices (root
// only). The device must read as the raw restore; holes are zeroed over old data unless
// --assume-zeroed; --check re-reads the device; and every device that must not be overwritten
// (mounted, with a mounted partition, a partition of a mounted disk, too small, not a device, no
// confirmation possible) is refused in one line before a byte is written.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceRefusal, inspectBlockDevice } from '../../src/disk/device-check.js';
import type { MountEntry } from '../../src/volume/mountinfo.js';
import { runCli, type CliResult } from '../support/cli.js';
import { keysDir, projectRoot } from '../support/fixtures.js';
import { isRoot, Scratch, sh } from '../volume/support.js';

const userKey = path.join(keysDir, 'user-key.pem');
const userCert = path.join(keysDir, 'user-cert.pem');
const ec2Cert = path.join(keysDir, 'ec2-cert.pem');
const MiB = 1024 * 1024;

let scratch: Scratch;
let bundleDir: string;
let manifest: string;
/** The raw restore: what every device must read as. */
let raw: Buffer;

function unbundleArgs(extra: readonly string[]): string[] {
  return ['unbundle', '-m', manifest, '-k', userKey, '-s', bundleDir, '--cert', userCert, ...extra];
}

function unbundle(extra: readonly string[]): Promise<CliResult> {
  return runCli('amibundle', unbundleArgs(extra));
}

/** A loop device over a new file of `size` bytes, every byte `fill`. */
function loopDevice(name: string, size: number, fill: number): string {
  const file = scratch.path(`${name}.dev`);
  fs.writeFileSync(file, Buffer.alloc(size, fill));
  return sh('losetup', ['--find', '--show', file]).trim();
}

function readDevice(device: string, length: number): Buffer {
  const fd = fs.openSync(device, 'r');
  try {
    const buf = Buffer.alloc(length);
    let at = 0;
    while (at < length) {
      const n = fs.readSync(fd, buf, at, length - at, at);
      if (n === 0) break;
      at += n;
    }
    return buf.subarray(0, at);
  } finally {
    fs.closeSync(fd);
  }
}

function expectOneLineRefusal(r: CliResult, code: number, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr.trim().split('\n')[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  if (!isRoot) return;
  scratch = new Scratch('device');
  // A sparse ext4 image with data, zero-filled files and free space (the holes).
  const tree = scratch.path('tree');
  fs.mkdirSync(path.join(tree, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'etc', 'hostname'), 'rescued\n');
  fs.writeFileSync(
    path.join(tree, 'random.bin'),
    Buffer.from(Array.from({ length: 3 * MiB }, (_, i) => ((i * 7919) % 251) + 1)),
  );
  fs.writeFileSync(path.join(tree, 'zeros.bin'), Buffer.alloc(2 * MiB));
  const image = scratch.path('rootfs.img');
  fs.writeFileSync(image, '');
  fs.truncateSync(image, 32 * MiB);
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', tree, image]);
  bundleDir = scratch.path('bundle');
  fs.mkdirSync(bundleDir);
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
  manifest = path.join(bundleDir, 'rootfs.img.manifest.xml');
  const dest = scratch.path('raw');
  fs.mkdirSync(dest);
  const u = await unbundle(['-d', dest]);
  expect(u.code, u.stderr).toBe(0);
  raw = fs.readFileSync(path.join(dest, 'rootfs.img'));
  expect(raw.length).toBe(32 * MiB);
});

afterAll(() => scratch?.release());

describe.skipIf(!isRoot)('unbundle --device', () => {
  it('writes the image onto a device full of old data: it reads as the raw restore, holes zeroed, the rest of the device untouched; --check passes', async () => {
    const dev = loopDevice('old-data', raw.length + MiB, 0xff);
    const r = await unbundle(['--device', dev, '--batch', '--check']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Checked: ${dev} reads back the image`);
    const back = readDevice(dev, raw.length + MiB);
    expect(back.subarray(0, raw.length).equals(raw)).toBe(true);
    expect(back.subarray(raw.length).every((b) => b === 0xff)).toBe(true);
  });

  it('--assume-zeroed leaves holes and zero blocks alone: right on a zeroed device, and --check catches a device that was not', async () => {
    const zeroed = loopDevice('zeroed', raw.length, 0);
    const ok = await unbundle(['--device', zeroed, '--batch', '--assume-zeroed', '--check']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readDevice(zeroed, raw.length).equals(raw)).toBe(true);

    const dirty = loopDevice('dirty', raw.length, 0xff);
    const r = await unbundle(['--device', dirty, '--batch', '--assume-zeroed']);
    expect(r.code, r.stderr).toBe(0);
    const back = readDevice(dirty, raw.length);
    // Every non-zero byte of the image landed; the zero stretches were not written (still 0xff).
    let kept = 0;
    let wrong = 0;
    for (let i = 0; i < raw.length; i++) {
      if (raw[i] !== 0) wrong += back[i] === raw[i] ? 0 : 1;
      else if (back[i] === 0xff) kept++;
    }
    expect(wrong).toBe(0);
    expect(kept).toBeGreaterThan(16 * MiB);

    const checked = await unbundle(['--device', dirty, '--batch', '--assume-zeroed', '--check']);
    expectOneLineRefusal(checked, 254, /--check: .* does not read back what was written/);
  });
});

describe.skipIf(!isRoot)('unbundle --device refusals', () => {
  it('a mounted device', async () => {
    const dev = loopDevice('mounted', 16 * MiB, 0);
    sh('mkfs.ext4', ['-q', '-F', dev]);
    const mnt = scratch.path('mnt-whole');
    fs.mkdirSync(mnt);
    sh('mount', [dev, mnt]);
    const r = await unbundle(['--device', dev, '--batch']);
    expectOneLineRefusal(r, 254, new RegExp(`^ERROR: --device ${dev} is mounted at ${mnt}`));
  });

  it('a disk with a mounted partition', async () => {
    const file = scratch.path('parted.dev');
    fs.writeFileSync(file, Buffer.alloc(64 * MiB, 0xff));
    sh('sfdisk', ['--quiet', file], 'label: dos\nstart=2048, type=83\n');
    const dev = sh('losetup', ['--find', '--show', '--partscan', file]).trim();
    // Kernels that do not scan loop devices are told about the partition (as bundle-vol does).
    if (!fs.existsSync(`${dev}p1`)) spawnSync('partx', ['--add', dev]);
    for (let i = 0; i < 50 && !fs.existsSync(`${dev}p1`); i++) sh('sleep', ['0.1']);
    sh('mkfs.ext4', ['-q', '-F', `${dev}p1`]);
    const mnt = scratch.path('mnt-part');
    fs.mkdirSync(mnt);
    sh('mount', [`${dev}p1`, mnt]);
    const before = readDevice(dev, 1 * MiB);
    const r = await unbundle(['--device', dev, '--batch']);
    expectOneLineRefusal(
      r,
      254,
      new RegExp(`^ERROR: --device ${dev} has a partition, ${dev}p1, that is mounted at ${mnt}`),
    );
    expect(readDevice(dev, 1 * MiB).equals(before)).toBe(true);

    // A partition of a disk that is itself mounted: the real sysfs of this loop device, with the
    // whole disk in the mount table (no file system mounts that way here, so the table says it).
    const part = inspectBlockDevice(`${dev}p1`);
    expect(part.disk?.name).toBe(path.basename(dev));
    const diskMount: MountEntry = {
      id: 1,
      parentId: 0,
      devNumber: part.disk!.devNumber,
      root: '/',
      mountPoint: '/srv/disk',
      fsType: 'ext4',
      source: dev,
      options: 'rw',
    };
    expect(deviceRefusal(part, 1, [diskMount], '')?.message).toBe(
      `--device ${dev}p1 is a partition of ${dev}, which is mounted at /srv/disk`,
    );
    expect(deviceRefusal(part, 1, [], '')).toBeUndefined();
  });

  it('a device smaller than the image, and nothing is written to it', async () => {
    const dev = loopDevice('small', 8 * MiB, 0xff);
    const r = await unbundle(['--device', dev, '--batch']);
    expectOneLineRefusal(
      r,
      254,
      new RegExp(`^ERROR: --device ${dev} holds 8388608 bytes \\(8.0 MiB\\) but the image is 33554432 bytes`),
    );
    expect(readDevice(dev, 8 * MiB).every((b) => b === 0xff)).toBe(true);
  });

  it('a regular file is not a device (exit 2)', async () => {
    const file = scratch.path('plain.img');
    fs.writeFileSync(file, Buffer.alloc(64 * MiB));
    const r = await unbundle(['--device', file, '--batch']);
    expectOneLineRefusal(r, 2, new RegExp(`^ERROR: --device ${file} is not a block device`));
    expect(fs.readFileSync(file).every((b) => b === 0)).toBe(true);
  });

  it('without --batch and with stdin not a terminal: refused at once, not hanging on a prompt', async () => {
    const dev = loopDevice('no-batch', raw.length, 0xff);
    // stdin is a pipe that stays open: a prompt would wait for it.
    const child = spawn(
      process.execPath,
      [path.join(projectRoot, 'bin', 'amibundle.js'), ...unbundleArgs(['--device', dev])],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    child.stdin.destroy();
    expectOneLineRefusal({ code: code ?? -1, stdout: '', stderr }, 1, /stdin is not a terminal/);
    expect(readDevice(dev, raw.length).every((b) => b === 0xff)).toBe(true);
  });
});
