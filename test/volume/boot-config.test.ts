// The files bundle-vol writes so an image boots: fstab (kept and corrected, or generated), the
// kernel command line, GRUB's configuration and the kernel it picks; and the image size rules.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adjustFstab, generatedFstab } from '../../src/volume/fstab.js';
import { findKernel, grubConfig, kernelCommandLine, shellVariable } from '../../src/volume/grub.js';
import { EC2_ROOT_LIMIT_MIB } from '../../src/ec2-limits.js';
import { chooseImageSize, MiB } from '../../src/volume/size-plan.js';
import { pathInImage } from '../../src/volume/image-path.js';
import { parseTune2fsList } from '../../src/volume/source-probe.js';

const root = { uuid: '11111111-2222-4333-8444-555555555555', type: 'ext4', label: 'cloudimg-rootfs' };

describe('fstab', () => {
  it('names the root by UUID instead of a device name, keeping options', () => {
    const r = adjustFstab('/dev/xvda1 / ext4 defaults,noatime 0 1\n', root, []);
    expect(r.changed).toBe(true);
    expect(r.text).toBe(
      `# amibundle: was: /dev/xvda1 / ext4 defaults,noatime 0 1\nUUID=${root.uuid}\t/\text4\tdefaults,noatime\t0\t1\n`,
    );
  });

  it('leaves a root entry that already names the file system (UUID or LABEL) alone', () => {
    for (const spec of [`UUID=${root.uuid.toUpperCase()}`, 'LABEL=cloudimg-rootfs', `UUID="${root.uuid}"`]) {
      const text = `${spec} / ext4 defaults 0 1\n`;
      expect(adjustFstab(text, root, [])).toEqual({ text, notes: [], changed: false });
    }
  });

  it('comments out merged mounts and disks the image lacks; keeps launch-time devices and nofail entries', () => {
    const text = [
      '# comment',
      `UUID=${root.uuid} / ext4 defaults 0 1`,
      'UUID=7A3B-1C2D /boot/efi vfat umask=0077 0 1',
      'PARTUUID=abcd-02 /data xfs defaults 0 2',
      'UUID=0000-swap none swap sw 0 0',
      'LABEL=scratch /scratch ext4 defaults,nofail 0 2',
      '/dev/sdb /mnt auto defaults 0 2',
      'tmpfs /tmp tmpfs defaults 0 0',
      '',
    ].join('\n');
    const r = adjustFstab(text, root, ['/boot/efi']);
    const lines = r.text.split('\n');
    expect(lines[2]).toBe(
      '# amibundle: merged into the root file system: UUID=7A3B-1C2D /boot/efi vfat umask=0077 0 1',
    );
    expect(lines[3]).toBe('# amibundle: no such disk in the image: PARTUUID=abcd-02 /data xfs defaults 0 2');
    expect(lines[4]).toBe('# amibundle: no such disk in the image: UUID=0000-swap none swap sw 0 0');
    expect(lines.slice(5, 8)).toEqual([
      'LABEL=scratch /scratch ext4 defaults,nofail 0 2',
      '/dev/sdb /mnt auto defaults 0 2',
      'tmpfs /tmp tmpfs defaults 0 0',
    ]);
    expect(r.notes).toHaveLength(3);
  });

  it('fixes the type when the image has another file system, and adds a missing root entry', () => {
    const xfs = { ...root, type: 'xfs' };
    expect(adjustFstab('/dev/sda1 / ext4 errors=remount-ro 0 1\n', xfs, []).text).toContain(
      `UUID=${root.uuid}\t/\txfs\tdefaults\t0\t1`,
    );
    const added = adjustFstab('# UNCONFIGURED FSTAB FOR BASE SYSTEM\n', root, []);
    expect(added.text).toBe(
      `# UNCONFIGURED FSTAB FOR BASE SYSTEM\nUUID=${root.uuid}\t/\text4\tdefaults\t0\t1\n`,
    );
  });

  it('generates the standard EC2 fstab, corrected: root by UUID and type, ephemeral disk nofail', () => {
    const text = generatedFstab(root, false, '9.9.9');
    expect(text).toMatch(new RegExp(`^UUID=${root.uuid} +/ +ext4 +defaults +1 1$`, 'm'));
    expect(text).toMatch(/^\/dev\/sdb +\/mnt +auto +defaults,nofail,x-systemd\.device-timeout=10s +0 0$/m);
    expect(text).toMatch(/^none +\/proc +proc /m);
    expect(text).not.toContain('sda3');
    const legacy = generatedFstab({ ...root, type: 'xfs' }, true, '9.9.9');
    expect(legacy).toMatch(/^UUID=\S+ +\/ +xfs +defaults +0 0$/m);
    expect(legacy).toMatch(/^\/dev\/sda2 +\/mnt /m);
    expect(legacy).toMatch(/^\/dev\/sda3 +swap +swap /m);
  });
});

describe('GRUB configuration', () => {
  let sys: string;
  beforeAll(() => {
    sys = fs.mkdtempSync(path.join(os.tmpdir(), 'amibundle-grubcfg-'));
    fs.mkdirSync(path.join(sys, 'boot'));
    fs.mkdirSync(path.join(sys, 'etc/default'), { recursive: true });
  });
  afterAll(() => fs.rmSync(sys, { recursive: true, force: true }));

  it('reads GRUB_CMDLINE_* as a shell would (quotes, repeats, export)', () => {
    const text =
      'GRUB_CMDLINE_LINUX="a b"\nexport GRUB_CMDLINE_LINUX=\'c  d\'\n#GRUB_CMDLINE_LINUX="no"\nGRUB_CMDLINE_LINUX_DEFAULT=quiet\n';
    expect(shellVariable(text, 'GRUB_CMDLINE_LINUX')).toBe('c  d');
    expect(shellVariable(text, 'GRUB_CMDLINE_LINUX_DEFAULT')).toBe('quiet');
    expect(shellVariable(text, 'GRUB_TIMEOUT')).toBeUndefined();
  });

  it('builds the command line: root by UUID, the system defaults, a serial console unless one is set', () => {
    fs.writeFileSync(
      path.join(sys, 'etc/default/grub'),
      'GRUB_CMDLINE_LINUX="root=/dev/sda1 rw nvme_core.io_timeout=4294967295"\nGRUB_CMDLINE_LINUX_DEFAULT="quiet splash"\n',
    );
    expect(kernelCommandLine(sys, root.uuid, true)).toBe(
      `root=UUID=${root.uuid} ro nvme_core.io_timeout=4294967295 quiet splash console=tty0 console=ttyS0,115200n8`,
    );
    expect(kernelCommandLine(sys, root.uuid, false)).toBe(
      `root=UUID=${root.uuid} ro nvme_core.io_timeout=4294967295 quiet splash`,
    );
    fs.writeFileSync(path.join(sys, 'etc/default/grub'), 'GRUB_CMDLINE_LINUX="console=ttyS1,9600"\n');
    expect(kernelCommandLine(sys, root.uuid, true)).toBe(`root=UUID=${root.uuid} ro console=ttyS1,9600`);
  });

  it('picks the newest kernel (numerically) with its initrd, skipping rescue kernels', () => {
    for (const f of [
      'vmlinuz-6.9.0-1',
      'vmlinuz-6.10.0-1',
      'vmlinuz-0-rescue-abc',
      'initrd.img-6.10.0-1',
      'initramfs-6.9.0-1.img',
    ])
      fs.writeFileSync(path.join(sys, 'boot', f), 'x');
    expect(findKernel(sys)).toEqual({
      kernel: '/boot/vmlinuz-6.10.0-1',
      initrd: '/boot/initrd.img-6.10.0-1',
      version: '6.10.0-1',
    });
    fs.rmSync(path.join(sys, 'boot/vmlinuz-6.10.0-1'));
    expect(findKernel(sys)).toEqual({
      kernel: '/boot/vmlinuz-6.9.0-1',
      initrd: '/boot/initramfs-6.9.0-1.img',
      version: '6.9.0-1',
    });
  });

  it('writes a configuration that finds the root by UUID and loads the partition and fs modules', () => {
    const cfg = grubConfig({
      uuid: root.uuid,
      fsType: 'xfs',
      scheme: 'gpt',
      kernel: { kernel: '/boot/vmlinuz-6.1.0-1', initrd: '/boot/initrd.img-6.1.0-1', version: '6.1.0-1' },
      cmdline: `root=UUID=${root.uuid} ro`,
      serialConsole: true,
      title: "it's mine",
    });
    expect(cfg).toContain('insmod part_gpt\ninsmod xfs\n');
    expect(cfg).toContain(`search --no-floppy --fs-uuid --set=root ${root.uuid}\n`);
    expect(cfg).toContain("menuentry 'its mine' {\n\tlinux /boot/vmlinuz-6.1.0-1 root=UUID=");
    expect(cfg).toContain('\tinitrd /boot/initrd.img-6.1.0-1\n}');
    expect(cfg).toContain('serial --unit=0 --speed=115200');
  });
});

describe('image size', () => {
  it('fits the data with headroom, and more inodes when there are many small files', () => {
    const d = chooseImageSize({ bytes: 2000 * MiB, inodes: 50_000 }, 'ext4', false, undefined);
    expect(d.sizeMiB).toBeGreaterThan(2000 * 1.25);
    expect(d.sizeMiB % 64).toBe(0);
    expect(d.inodes).toBeUndefined();
    const many = chooseImageSize({ bytes: 100 * MiB, inodes: 400_000 }, 'ext4', false, undefined);
    expect(many.inodes).toBeGreaterThan(400_000);
    expect(chooseImageSize({ bytes: 0, inodes: 1 }, 'xfs', false, undefined).sizeMiB).toBeGreaterThanOrEqual(
      512,
    );
  });

  it("caps at EC2's 10 GiB limit while the data fits, and refuses when it does not", () => {
    const capped = chooseImageSize({ bytes: 9000 * MiB, inodes: 1000 }, 'ext4', true, undefined);
    expect(capped.sizeMiB).toBe(EC2_ROOT_LIMIT_MIB);
    expect(capped.message).toMatch(/capped/);
    expect(() => chooseImageSize({ bytes: 11000 * MiB, inodes: 1000 }, 'ext4', true, undefined)).toThrow(
      /10240 MiB limit.*/,
    );
    const forced = chooseImageSize({ bytes: 11000 * MiB, inodes: 1000 }, 'ext4', true, 20000);
    expect(forced.sizeMiB).toBe(20000);
    expect(forced.message).toMatch(/EC2 will refuse to register it/);
    expect(() => chooseImageSize({ bytes: 0, inodes: 1 }, 'xfs', false, 100)).toThrow(/too small/);
  });
});

describe('tune2fs -l', () => {
  it('keeps format features, drops run-time state', () => {
    const p = parseTune2fsList(
      'Filesystem features:      has_journal ext_attr resize_inode dir_index filetype needs_recovery extent 64bit flex_bg sparse_super large_file huge_file dir_nlink extra_isize metadata_csum orphan_present\nInode size:\t          256\nBlock size:               4096\n',
    );
    expect(p.features).not.toContain('needs_recovery');
    expect(p.features).not.toContain('orphan_present');
    expect(p.features).toContain('metadata_csum');
    expect(p).toMatchObject({ inodeSize: 256, blockSize: 4096 });
  });
});

describe('pathInImage', () => {
  let img: string;
  beforeAll(() => {
    img = fs.mkdtempSync(path.join(os.tmpdir(), 'amibundle-imgpath-'));
    fs.mkdirSync(path.join(img, 'realboot/grub'), { recursive: true });
    fs.mkdirSync(path.join(img, 'etc2'));
    fs.symlinkSync('/realboot', path.join(img, 'boot')); // absolute: the image's /realboot
    fs.symlinkSync('../etc2', path.join(img, 'etc'));
    fs.symlinkSync('/../../../../etc/passwd', path.join(img, 'escape'));
    fs.symlinkSync('loop-b', path.join(img, 'loop-a'));
    fs.symlinkSync('loop-a', path.join(img, 'loop-b'));
  });
  afterAll(() => fs.rmSync(img, { recursive: true, force: true }));

  it("resolves links as the image's own system would, never reaching this host's files", () => {
    expect(pathInImage(img, 'boot/grub/grub.cfg')).toBe(path.join(img, 'realboot/grub/grub.cfg'));
    expect(pathInImage(img, '/etc/fstab')).toBe(path.join(img, 'etc2/fstab'));
    expect(pathInImage(img, 'escape')).toBe(path.join(img, 'etc2/passwd'));
    expect(pathInImage(img, 'missing/dir/file')).toBe(path.join(img, 'missing/dir/file'));
    expect(() => pathInImage(img, 'loop-a/x')).toThrow(/too many symbolic links/);
  });
});
