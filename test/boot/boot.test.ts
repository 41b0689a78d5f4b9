// Boot proof: a Debian system built by debootstrap goes the whole way a user takes it (bundle-vol
// -P mbr / -P gpt with signing keys -> parts and manifest -> unbundle) and the restored disk boots
// under qemu-system-x86_64 (software emulation) far enough for systemd to run a unit that prints
// this run's nonce on the serial console. Also: a source system that named its root
// /dev/nvme0n1p1 (fstab, GRUB) boots from a disk that is vda; and -P none says it is for
// paravirtual launches only and holds no boot loader.
//
// Needs root, x86_64, qemu-system-x86_64 and (on a cold cache) debootstrap with this machine's
// apt mirror. Anything missing fails the tests with a message; only AMIBUNDLE_SKIP_BOOT_TESTS=1
// skips them, and says so.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../support/cli.js';
import { keysDir } from '../support/fixtures.js';
import { loopDevices, sh, workDirs } from '../volume/support.js';
import {
  cachedSystem,
  extractSystem,
  hostSystemSpec,
  installBootMarker,
  MARKER,
  setSourceNaming,
  type SourceNaming,
} from './debian-tree.js';
import { bootImage, failureReport, killAllGuests, type DiskBus } from './qemu.js';
import { onPath } from './run.js';
import { BootScratch, mountsBelow } from './scratch.js';

const skipRequested = process.env.AMIBUNDLE_SKIP_BOOT_TESTS === '1';
if (skipRequested) console.warn('AMIBUNDLE_SKIP_BOOT_TESTS=1: the QEMU boot tests are SKIPPED');

const key = path.join(keysDir, 'user-key.pem');
const cert = path.join(keysDir, 'user-cert.pem');
const signing = ['-k', key, '-c', cert, '-u', '123456789012', '-r', 'x86_64', '--no-inherit', '--batch'];
const minutes = 60_000;

function log(line: string): void {
  console.log(`[boot] ${line}`);
}

/** Everything the tests need from this machine, checked up front so a gap is named, not skipped. */
function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (loop devices, mounts, chroot)');
  if (process.arch !== 'x64') missing.push(`an x86_64 host (this is ${process.arch})`);
  for (const [tool, pkg] of [
    ['qemu-system-x86_64', 'qemu-system-x86'],
    ['debootstrap', 'debootstrap'],
    ['tar', 'tar'],
    ['sfdisk', 'fdisk'],
    ['partx', 'util-linux'],
    ['rsync', 'rsync'],
    ['udevadm', 'udev'],
  ] as const)
    if (!onPath(tool)) missing.push(`${tool} (Debian package ${pkg})`);
  return missing;
}

function elapsed(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(0)} s`;
}

/** Command lines of running processes that mention `text` (from /proc: procps may be absent). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (args.includes(text) && Number(pid) !== process.pid) found.push(`${pid}: ${args}`);
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}

describe.skipIf(skipRequested)('boot proof: bundle-vol -> bundle -> unbundle -> boots under QEMU', () => {
  let scratch: BootScratch | undefined;
  let tree: string;
  let tmp: string;

  beforeAll(async () => {
    const missing = missingPrerequisites();
    if (missing.length > 0)
      throw new Error(
        `the boot tests cannot run here; missing: ${missing.join('; ')}. Install them (CI does), or set AMIBUNDLE_SKIP_BOOT_TESTS=1 to skip them knowingly.`,
      );
    const started = Date.now();
    const cached = await cachedSystem(hostSystemSpec(), log);
    log(
      cached.built
        ? `test system built in ${cached.seconds.toFixed(0)} s and cached as ${cached.tar}`
        : `test system from the cache: ${cached.tar}`,
    );
    scratch = new BootScratch('run');
    tree = scratch.path('system');
    tmp = scratch.mkdir('tmp');
    const unpacking = Date.now();
    await extractSystem(cached.tar, tree);
    log(`unpacked in ${elapsed(unpacking)}; ready after ${elapsed(started)}`);
  }, 45 * minutes);

  afterAll(() => {
    killAllGuests();
    scratch?.release();
  });

  interface BootCase {
    readonly name: string;
    readonly tool: 'ec2-bundle-vol' | 'amibundle';
    readonly scheme: 'mbr' | 'gpt';
    readonly bus: DiskBus;
    readonly naming: SourceNaming;
    readonly extra?: readonly string[];
    /** The root device the booted system should report. */
    readonly rootDevice: string;
  }

  interface BootedCase {
    readonly bundleVol: CliResult;
    readonly uuid: string;
    readonly console: string;
  }

  async function bundleRestoreBoot(c: BootCase): Promise<BootedCase> {
    const nonce = crypto.randomUUID();
    installBootMarker(tree, nonce);
    setSourceNaming(tree, c.naming);
    const dest = scratch!.mkdir(c.name, 'bundle');
    const restored = scratch!.mkdir(c.name, 'restored');

    let t = Date.now();
    const args = ['-v', tree, '-P', c.scheme, '-d', dest, '-p', c.name, ...signing, ...(c.extra ?? [])];
    const bundleVol = await runCli(c.tool, c.tool === 'amibundle' ? ['bundle-vol', ...args] : args, {
      env: { TMPDIR: tmp },
      timeoutMs: 20 * minutes,
    });
    expect(bundleVol.code, `${bundleVol.stdout}\n${bundleVol.stderr}`).toBe(0);
    const uuid = /UUID ([0-9a-f-]{36})/.exec(bundleVol.stdout)?.[1];
    expect(uuid, bundleVol.stdout).toBeDefined();
    log(`${c.name}: bundle-vol -P ${c.scheme} (image and bundle) took ${elapsed(t)}`);

    // Only the bundle goes on: the image bundle-vol made is gone before the restore.
    fs.rmSync(path.join(dest, c.name));
    t = Date.now();
    const unbundle = await runCli(
      'ec2-unbundle',
      ['-m', path.join(dest, `${c.name}.manifest.xml`), '-k', key, '-s', dest, '-d', restored],
      { timeoutMs: 20 * minutes },
    );
    expect(unbundle.code, `${unbundle.stdout}\n${unbundle.stderr}`).toBe(0);
    log(`${c.name}: unbundle took ${elapsed(t)}`);
    fs.rmSync(dest, { recursive: true });

    const image = path.join(restored, c.name);
    const boot = await bootImage({ image, bus: c.bus, marker: MARKER, nonce });
    log(`${c.name}: ${boot.booted ? 'booted' : 'did NOT boot'} on ${c.bus} in ${boot.seconds.toFixed(0)} s`);
    if (!boot.booted) console.error(`[boot] ${c.name}: ${failureReport(boot)}`);
    expect(boot.booted, failureReport(boot)).toBe(true);

    // The system came up from the disk it was given, read-write, with nothing failed.
    const root = boot.report.get('AMIBUNDLE-ROOT') ?? '';
    expect(root.split(/\s+/).slice(0, 2), root).toEqual([c.rootDevice, 'ext4']);
    expect(root.split(/\s+/)[2]?.split(',')).toContain('rw');
    expect(boot.report.get('AMIBUNDLE-FAILED-UNITS'), failureReport(boot)).toBe('[]');
    // GRUB handed the kernel the root by UUID, with the serial console bundle-vol added.
    const cmdline = /Command line: (.*)$/m.exec(boot.console)?.[1] ?? '';
    expect(cmdline.split(' ')).toContain(`root=UUID=${uuid!}`);
    expect(cmdline.split(' ')).toContain('console=ttyS0,115200n8');
    fs.rmSync(scratch!.path(c.name), { recursive: true });
    return { bundleVol, uuid: uuid!, console: boot.console };
  }

  it(
    '-P mbr: GRUB in the MBR gap; boots from an NVMe disk',
    async () => {
      await bundleRestoreBoot({
        name: 'boot-mbr',
        tool: 'ec2-bundle-vol',
        scheme: 'mbr',
        bus: 'nvme',
        naming: 'debootstrap',
        rootDevice: '/dev/nvme0n1p1',
      });
    },
    40 * minutes,
  );

  it(
    '-P gpt: GRUB in the BIOS boot partition; boots from an NVMe disk',
    async () => {
      await bundleRestoreBoot({
        name: 'boot-gpt',
        tool: 'amibundle',
        scheme: 'gpt',
        bus: 'nvme',
        naming: 'debootstrap',
        extra: ['--no-filter'],
        rootDevice: '/dev/nvme0n1p1',
      });
    },
    40 * minutes,
  );

  it(
    'a system whose fstab and GRUB named its root /dev/nvme0n1p1 (and had /boot/efi) boots from a virtio disk (vda)',
    async () => {
      const r = await bundleRestoreBoot({
        name: 'boot-renamed',
        tool: 'ec2-bundle-vol',
        scheme: 'gpt',
        bus: 'virtio',
        naming: 'nvme',
        extra: ['--no-filter'],
        rootDevice: '/dev/vda1',
      });
      expect(r.bundleVol.stdout).toContain(
        `/etc/fstab: the root entry now names the file system by UUID=${r.uuid} (was /dev/nvme0n1p1)`,
      );
      expect(r.bundleVol.stdout).toMatch(/commented out \/boot\/efi \(UUID=7B3A-1C2D\)/);
      expect(r.console).not.toMatch(/Command line: .*nvme0n1p1/);
    },
    40 * minutes,
  );

  it(
    '-P none: a bare file system with no boot loader, and bundle-vol says it is for paravirtual (--kernel) launches only',
    async () => {
      const dest = scratch!.mkdir('none');
      const r = await runCli(
        'amibundle',
        ['bundle-vol', '--clone-only', '--batch', '-v', tree, '-P', 'none', '-d', dest, '-p', 'pv.img'],
        { env: { TMPDIR: tmp }, timeoutMs: 20 * minutes },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(
        /no boot loader, for paravirtual instances started with a kernel \(--kernel\)/,
      );
      expect(r.stdout).toMatch(/cannot boot as HVM/);
      const image = path.join(dest, 'pv.img');
      const probe = sh('blkid', ['-p', '-o', 'export', image]);
      expect(probe).toMatch(/^TYPE=ext4$/m);
      expect(probe).not.toMatch(/^PTTYPE=/m);
      // No boot code and no boot signature: a BIOS will not even try to start this disk.
      const fd = fs.openSync(image, 'r');
      const sector = Buffer.alloc(512);
      fs.readSync(fd, sector, 0, 512, 0);
      fs.closeSync(fd);
      expect(sector.subarray(0, 446).every((b) => b === 0)).toBe(true);
      expect(sector.readUInt16LE(510)).not.toBe(0xaa55);
      fs.rmSync(dest, { recursive: true });
    },
    20 * minutes,
  );

  it('leaves no guest, mount, loop device or work directory behind', () => {
    expect(mountsBelow(scratch!.dir)).toEqual([]);
    expect(loopDevices().filter((l) => l.file.startsWith(`${scratch!.dir}/`))).toEqual([]);
    expect(workDirs(tmp)).toEqual([]);
    expect(processesMentioning(scratch!.dir)).toEqual([]);
  });
});
