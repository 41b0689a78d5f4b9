// Boot proof for `unbundle --hvm`: the boot test's Debian system as a paravirtual image (a bare
// ext4 file system, no partition table, no boot loader) comes back from its bundle as a whole
// disk that boots under QEMU's BIOS far enough for systemd to print this run's nonce. Once from
// `bundle-vol -P none` (raw, MBR, NVMe disk), once from a bundle in the ec2-ami-tools layout
// (`tar -cS | gzip -9 | openssl enc`) restored as qcow2 with GPT and booted from it as qcow2. Both
// systems carry a PV fstab (/dev/sda2 on /mnt, swap on /dev/sda3): left as they were, the boot
// would stop waiting for those disks. And an image whose /boot is empty is refused with the line
// that says what to do, and converts with --kernel-from.
//
// Needs root, x86_64, qemu-system-x86_64, grub-install (grub-pc-bin) and the boot test's cached
// system (built by debootstrap on a cold cache); AMIBUNDLE_SKIP_BOOT_TESTS=1 skips, and says so.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { keysDir } from '../support/fixtures.js';
import { loopDevices, sh } from '../volume/support.js';
import { cachedSystem, extractSystem, hostSystemSpec, installBootMarker, MARKER } from './debian-tree.js';
import { referenceLayoutBundle } from './hvm-bundle.js';
import { bootImage, failureReport, killAllGuests, type DiskBus } from './qemu.js';
import { onPath } from './run.js';
import { BootScratch, mountsBelow } from './scratch.js';

const skipRequested = process.env.AMIBUNDLE_SKIP_BOOT_TESTS === '1';
if (skipRequested) console.warn('AMIBUNDLE_SKIP_BOOT_TESTS=1: the QEMU --hvm boot tests are SKIPPED');

const key = path.join(keysDir, 'user-key.pem');
const cert = path.join(keysDir, 'user-cert.pem');
const ec2Cert = path.join(keysDir, 'ec2-cert.pem');
const signing = ['-k', key, '-c', cert, '-u', '123456789012', '-r', 'x86_64', '--batch'];
const minutes = 60_000;

/** The fstab of an instance-store PV system: root, ephemeral disk and swap by launch-time names. */
const PV_FSTAB =
  '/dev/sda1\t/\text4\tdefaults\t1 1\n/dev/sda2\t/mnt\text3\tdefaults\t0 0\n/dev/sda3\tswap\tswap\tdefaults\t0 0\nnone\t/proc\tproc\tdefaults\t0 0\n';

function log(line: string): void {
  console.log(`[boot-hvm] ${line}`);
}

function elapsed(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(0)} s`;
}

describe.skipIf(skipRequested)('unbundle --hvm: paravirtual images become disks that boot', () => {
  let scratch: BootScratch | undefined;
  let tree: string;
  let tmp: string;

  beforeAll(async () => {
    const missing: string[] = [];
    if (process.getuid?.() !== 0) missing.push('root');
    if (process.arch !== 'x64') missing.push('an x86_64 host');
    for (const tool of [
      'qemu-system-x86_64',
      'qemu-img',
      'grub-install',
      'debootstrap',
      'sfdisk',
      'partx',
      'udevadm',
    ])
      if (!onPath(tool)) missing.push(tool);
    if (missing.length > 0)
      throw new Error(
        `the --hvm boot tests cannot run here; missing: ${missing.join(', ')} (AMIBUNDLE_SKIP_BOOT_TESTS=1 skips them knowingly)`,
      );
    const cached = await cachedSystem(hostSystemSpec(), log);
    scratch = new BootScratch('hvm');
    tree = scratch.path('system');
    tmp = scratch.mkdir('tmp');
    await extractSystem(cached.tar, tree);
    fs.writeFileSync(path.join(tree, 'etc/fstab'), PV_FSTAB);
  }, 45 * minutes);

  afterAll(() => {
    killAllGuests();
    scratch?.release();
  });

  async function expectBoots(
    image: string,
    bus: DiskBus,
    format: 'raw' | 'qcow2',
    nonce: string,
    rootDevice: string,
  ): Promise<void> {
    const boot = await bootImage({ image, bus, format, marker: MARKER, nonce });
    log(
      `${path.basename(image)}: ${boot.booted ? 'booted' : 'did NOT boot'} in ${boot.seconds.toFixed(0)} s`,
    );
    expect(boot.booted, failureReport(boot)).toBe(true);
    const root = boot.report.get('AMIBUNDLE-ROOT') ?? '';
    expect(root.split(/\s+/).slice(0, 2), root).toEqual([rootDevice, 'ext4']);
    expect(boot.report.get('AMIBUNDLE-FAILED-UNITS'), failureReport(boot)).toBe('[]');
    const cmdline = /Command line: (.*)$/m.exec(boot.console)?.[1] ?? '';
    expect(cmdline).toMatch(/root=UUID=[0-9a-f-]{36}/);
    expect(cmdline.split(' ')).toContain('console=ttyS0,115200n8');
    expect(cmdline.split(' ')).toContain('console=tty0');
  }

  it(
    'bundle-vol -P none -> unbundle --hvm (MBR, raw) boots from an NVMe disk',
    async () => {
      const nonce = crypto.randomUUID();
      installBootMarker(tree, nonce);
      const dest = scratch!.mkdir('pv', 'bundle');
      const restored = scratch!.mkdir('pv', 'restored');
      let t = Date.now();
      const b = await runCli(
        'amibundle',
        ['bundle-vol', '-v', tree, '-P', 'none', '-d', dest, '-p', 'pv.img', '--no-inherit', ...signing],
        { env: { TMPDIR: tmp }, timeoutMs: 20 * minutes },
      );
      expect(b.code, `${b.stdout}\n${b.stderr}`).toBe(0);
      fs.rmSync(path.join(dest, 'pv.img'));
      log(`bundle-vol -P none took ${elapsed(t)}`);
      t = Date.now();
      const u = await runCli(
        'amibundle',
        [
          'unbundle',
          '-m',
          path.join(dest, 'pv.img.manifest.xml'),
          '-k',
          key,
          '-s',
          dest,
          '-d',
          restored,
          '--hvm',
        ],
        { timeoutMs: 20 * minutes },
      );
      expect(u.code, `${u.stdout}\n${u.stderr}`).toBe(0);
      log(`unbundle --hvm took ${elapsed(t)}`);
      expect(u.stdout).toMatch(/commented out \/mnt \(\/dev\/sda2\)/);
      expect(u.stdout).toMatch(/commented out swap \(\/dev\/sda3\)/);
      expect(fs.readdirSync(restored)).toEqual(['pv.img']);
      const image = path.join(restored, 'pv.img');
      expect(sh('blkid', ['-p', '-o', 'export', image])).toMatch(/^PTTYPE=dos$/m);
      fs.rmSync(dest, { recursive: true });
      await expectBoots(image, 'nvme', 'raw', nonce, '/dev/nvme0n1p1');
      fs.rmSync(scratch!.path('pv'), { recursive: true });
    },
    40 * minutes,
  );

  it(
    'an ec2-ami-tools layout bundle (tar -cS | gzip -9 | openssl enc) -> unbundle --hvm --partition gpt --format qcow2 boots as qcow2',
    async () => {
      const nonce = crypto.randomUUID();
      installBootMarker(tree, nonce);
      const work = scratch!.mkdir('ref');
      const image = path.join(work, 'pv-ref.img');
      let t = Date.now();
      fs.writeFileSync(image, '');
      fs.truncateSync(image, 768 * 1024 * 1024);
      sh('mkfs.ext4', ['-q', '-F', '-d', tree, image]);
      const bundleDir = scratch!.mkdir('ref', 'bundle');
      const manifest = await referenceLayoutBundle(image, bundleDir);
      fs.rmSync(image);
      log(`mkfs.ext4 -d and the reference-layout bundle took ${elapsed(t)}`);
      const restored = scratch!.mkdir('ref', 'restored');
      t = Date.now();
      const u = await runCli(
        'amibundle',
        [
          'unbundle',
          '-m',
          manifest,
          '-k',
          key,
          '-s',
          bundleDir,
          '-d',
          restored,
          '--hvm',
          '--partition',
          'gpt',
          '--format',
          'qcow2',
        ],
        { timeoutMs: 20 * minutes },
      );
      expect(u.code, `${u.stdout}\n${u.stderr}`).toBe(0);
      log(`unbundle --hvm --format qcow2 took ${elapsed(t)}`);
      expect(u.stdout).toMatch(/the root entry now names the file system by UUID=\S+ \(was \/dev\/sda1\)/);
      expect(fs.readdirSync(restored)).toEqual(['pv-ref.img.qcow2']);
      const disk = path.join(restored, 'pv-ref.img.qcow2');
      expect(sh('qemu-img', ['check', '-f', 'qcow2', disk])).toContain('No errors were found');
      await expectBoots(disk, 'virtio', 'qcow2', nonce, '/dev/vda1');
      fs.rmSync(work, { recursive: true });
    },
    40 * minutes,
  );

  it(
    'an image with an empty /boot is refused in one line, and converts with --kernel-from',
    async () => {
      const work = scratch!.mkdir('nokernel');
      const small = path.join(work, 'tree');
      fs.mkdirSync(path.join(small, 'boot'), { recursive: true });
      fs.mkdirSync(path.join(small, 'etc'));
      fs.writeFileSync(path.join(small, 'etc/fstab'), PV_FSTAB);
      const image = path.join(work, 'aki.img');
      fs.writeFileSync(image, '');
      fs.truncateSync(image, 64 * 1024 * 1024);
      sh('mkfs.ext4', ['-q', '-F', '-d', small, image]);
      const bundleDir = scratch!.mkdir('nokernel', 'bundle');
      const b = await runCli('amibundle', [
        'bundle-image',
        '-i',
        image,
        '-d',
        bundleDir,
        '--ec2cert',
        ec2Cert,
        ...signing,
      ]);
      expect(b.code, b.stderr).toBe(0);
      const restored = scratch!.mkdir('nokernel', 'restored');
      const args = [
        'unbundle',
        '-m',
        path.join(bundleDir, 'aki.img.manifest.xml'),
        '-k',
        key,
        '-s',
        bundleDir,
        '-d',
        restored,
        '--hvm',
      ];
      const r = await runCli('amibundle', args);
      expect(r.code, r.stdout).toBe(254);
      expect(r.stderr.split('\n')[0]).toMatch(
        /^ERROR: the image aki\.img has no kernel in \/boot: this image booted a kernel from an AKI; give one with --kernel-from PATH$/,
      );
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(fs.readdirSync(restored)).toEqual([]);

      const k = await runCli('amibundle', [...args, '--kernel-from', path.join(tree, 'boot')]);
      expect(k.code, `${k.stdout}\n${k.stderr}`).toBe(0);
      expect(k.stdout).toMatch(/Copied vmlinuz-\S+ from .* into the image's \/boot/);
      expect(fs.readdirSync(restored)).toEqual(['aki.img']);
      expect(sh('blkid', ['-p', '-o', 'export', path.join(restored, 'aki.img')])).toMatch(/^PTTYPE=dos$/m);
    },
    10 * minutes,
  );

  it('leaves no mount, loop device or temporary directory behind', () => {
    expect(mountsBelow(scratch!.dir)).toEqual([]);
    expect(loopDevices().filter((l) => l.file.startsWith(`${scratch!.dir}/`))).toEqual([]);
    expect(fs.readdirSync('/tmp').filter((n) => n.startsWith('amibundle-hvm-root-'))).toEqual([]);
  });
});
