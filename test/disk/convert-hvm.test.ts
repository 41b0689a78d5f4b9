// `amibundle convert --hvm IN OUT`: a partitionless file system handed over as a container (a
// qcow2 here, so the raw copy beside OUT is exercised) comes out as a whole disk in OUT's format:
// a DOS partition table, GRUB's boot code in the MBR, the file system in partition 1 with a
// grub.cfg that boots the image's kernel by root UUID on a serial console, and the PV-only fstab
// entries commented out. Read back through qemu-img and debugfs, never by mounting. The boot
// itself is proven by test/boot/hvm.test.ts (unbundle --hvm shares the disk maker).
//
// Needs root (loop devices, mount) and the host's grub-install (grub-pc-bin).
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { expectCheckClean, qemuImg } from './qemu.js';

const PV_FSTAB =
  '/dev/sda1\t/\text4\tdefaults\t1 1\n/dev/sda2\t/mnt\text3\tdefaults\t0 0\n/dev/xvdb\tnone\tswap\tsw\t0 0\n';

function sh(cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, [...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A 64 MiB ext4 image made from `tree`, as a qcow2 (the container convert must read, not copy). */
function fsImage(dir: string, tree: string): string {
  const raw = path.join(dir, 'root.raw');
  fs.writeFileSync(raw, '');
  fs.truncateSync(raw, 64 * 1024 * 1024);
  sh('mkfs.ext4', ['-q', '-F', '-d', tree, raw]);
  const qcow2 = path.join(dir, 'pv-root.qcow2');
  expect(qemuImg(['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]).code).toBe(0);
  fs.rmSync(raw);
  return qcow2;
}

/** debugfs's view of one file inside the file system stored in `fsFile`. */
function catInImage(fsFile: string, file: string): string {
  return sh('debugfs', ['-R', `cat ${file}`, fsFile]);
}

let work: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'amibundle-convert-hvm-'));
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe('convert --hvm', () => {
  it('makes a partitioned disk with GRUB, the kernel by root UUID and the PV fstab entries commented out', async () => {
    const tree = path.join(work, 'tree');
    fs.mkdirSync(path.join(tree, 'boot'), { recursive: true });
    fs.mkdirSync(path.join(tree, 'etc'));
    fs.writeFileSync(path.join(tree, 'etc/fstab'), PV_FSTAB);
    fs.writeFileSync(path.join(tree, 'boot/vmlinuz-6.1.0-9-amd64'), crypto.randomBytes(256 * 1024));
    fs.writeFileSync(path.join(tree, 'boot/vmlinuz-5.10.0-1-amd64'), crypto.randomBytes(256 * 1024));
    fs.writeFileSync(path.join(tree, 'boot/initrd.img-6.1.0-9-amd64'), crypto.randomBytes(64 * 1024));
    const input = fsImage(work, tree);
    const out = path.join(work, 'disk.vmdk');

    const r = await runCli('amibundle', ['convert', input, out, '--hvm']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/Bootable disk .*disk\.vmdk/);
    expect(fs.readdirSync(work).sort()).toEqual(['disk.vmdk', 'pv-root.qcow2', 'tree']);
    expectCheckClean('vmdk', out);

    const back = path.join(work, 'back.raw');
    expect(qemuImg(['convert', '-f', 'vmdk', '-O', 'raw', out, back]).code).toBe(0);
    expect(sh('blkid', ['-p', '-o', 'export', back])).toMatch(/^PTTYPE=dos$/m);
    const mbr = Buffer.alloc(512);
    const fd = fs.openSync(back, 'r');
    fs.readSync(fd, mbr, 0, 512, 0);
    fs.closeSync(fd);
    expect(mbr.subarray(0, 446).toString('latin1')).toContain('GRUB');
    expect(mbr.readUInt16LE(510)).toBe(0xaa55);

    const table = JSON.parse(sh('sfdisk', ['-J', back])) as {
      partitiontable: { partitions: { start: number; size: number }[] };
    };
    const [p1] = table.partitiontable.partitions;
    const part = path.join(work, 'p1.raw');
    sh('dd', [`if=${back}`, `of=${part}`, 'bs=512', `skip=${p1!.start}`, `count=${p1!.size}`, 'status=none']);
    const uuid = sh('blkid', ['-p', '-s', 'UUID', '-o', 'value', part]).trim();
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);

    const cfg = catInImage(part, '/boot/grub/grub.cfg');
    expect(cfg).toContain('vmlinuz-6.1.0-9-amd64');
    expect(cfg).not.toContain('vmlinuz-5.10.0-1-amd64');
    expect(cfg).toContain(`root=UUID=${uuid}`);
    expect(cfg).toContain('console=ttyS0');
    const fstab = catInImage(part, '/etc/fstab');
    expect(fstab).toMatch(new RegExp(`^UUID=${uuid}\\s+/\\s`, 'm'));
    expect(fstab).toMatch(/^#.*\/dev\/sda2\s+\/mnt/m);
    expect(fstab).toMatch(/^#.*\/dev\/xvdb\s+none\s+swap/m);
    expect(fstab).not.toMatch(/^\/dev\/(sda2|xvdb)/m);
    fs.rmSync(back);
    fs.rmSync(part);
    fs.rmSync(out);
  }, 300_000);

  it('refuses an image whose /boot holds no kernel in one line, leaving nothing behind', async () => {
    const dir = fs.mkdtempSync(path.join(work, 'nokernel-'));
    const tree = path.join(dir, 'tree');
    fs.mkdirSync(path.join(tree, 'boot'), { recursive: true });
    const input = fsImage(dir, tree);
    const out = path.join(dir, 'disk.qcow2');
    const r = await runCli('amibundle', ['convert', input, out, '--hvm']);
    expect(r.code, r.stdout).toBe(254);
    expect(r.stderr.split('\n')[0]).toMatch(/no kernel in \/boot: .*give one with --kernel-from PATH$/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(fs.readdirSync(dir).sort()).toEqual(['pv-root.qcow2', 'tree']);
  }, 300_000);

  it('takes --partition and --kernel-from only with --hvm', async () => {
    const r = await runCli('amibundle', ['convert', 'a.img', 'b.img', '--partition', 'gpt']);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')[0]).toMatch(/--partition needs --hvm/);
  });
});
