// -P mbr and -P gpt images of a small system tree (GRUB's i386-pc modules copied from this host,
// a dummy kernel): the partition table, the file system's UUID, GRUB's boot code in the MBR, its
// core image in the MBR gap or the BIOS boot partition, and the configuration naming the root by
// UUID, all read back from the image with sfdisk, blkid and a read-only mount.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { isRoot, loopDevices, Scratch, sh, workDirs } from './support.js';

interface SfdiskPartition {
  readonly node: string;
  readonly start: number;
  readonly size: number;
  readonly type: string;
  readonly bootable?: boolean;
}
interface SfdiskTable {
  readonly label: string;
  readonly partitions: SfdiskPartition[];
}

function partitionTable(image: string): SfdiskTable {
  return (JSON.parse(sh('sfdisk', ['--json', image])) as { partitiontable: SfdiskTable }).partitiontable;
}

function blkidAt(image: string, offset: number): Record<string, string> {
  const text = sh('blkid', ['-p', '-o', 'export', '-O', String(offset), image]);
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    fs.readSync(fd, buf, 0, length, offset);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/** Builds a system tree that a -P mbr/gpt image can be made from. */
function systemTree(root: string, withInstaller: boolean): void {
  fs.mkdirSync(path.join(root, 'usr/lib/grub'), { recursive: true });
  execFileSync('cp', ['-a', '/usr/lib/grub/i386-pc', path.join(root, 'usr/lib/grub/')]);
  fs.mkdirSync(path.join(root, 'boot'));
  fs.writeFileSync(path.join(root, 'boot/vmlinuz-5.10.0-1-old'), 'old kernel');
  fs.writeFileSync(path.join(root, 'boot/vmlinuz-6.1.0-10-test'), 'kernel 6.1.0-10');
  fs.writeFileSync(path.join(root, 'boot/vmlinuz-6.1.0-9-test'), 'kernel 6.1.0-9');
  fs.writeFileSync(path.join(root, 'boot/initrd.img-6.1.0-10-test'), 'initrd');
  fs.mkdirSync(path.join(root, 'etc/default'), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'etc/default/grub'),
    'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="net.ifnames=0 root=/dev/sda1"\n',
  );
  // The source system named its root device in a way the new instance will not (NVMe).
  fs.writeFileSync(path.join(root, 'etc/fstab'), '/dev/nvme0n1p1 / ext4 defaults 0 1\n');
  if (!withInstaller) return;
  // A shell (with its libraries) and GRUB programs of the tree's own that would leave a marker
  // in the tree if anything ran them: a -v DIR tree is data and none of them may run.
  copyWithLibraries(root, '/bin/sh');
  for (const tool of [
    'usr/sbin/grub-install',
    'usr/sbin/grub-mkconfig',
    'usr/bin/grub-mkimage',
    'usr/sbin/grub-probe',
  ]) {
    fs.mkdirSync(path.join(root, path.dirname(tool)), { recursive: true });
    fs.writeFileSync(path.join(root, tool), `#!/bin/sh\necho "$0 $*" >> /tree-program-ran\nexit 0\n`, {
      mode: 0o755,
    });
  }
}

/** `bin` and the shared libraries it loads, copied to the same paths under `root`. */
function copyWithLibraries(root: string, bin: string): void {
  const libs = sh('ldd', [bin])
    .split('\n')
    .map((l) => /(\/\S+)\s+\(0x/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
  for (const f of [bin, ...libs]) {
    fs.mkdirSync(path.join(root, path.dirname(f)), { recursive: true });
    fs.copyFileSync(fs.realpathSync(f), path.join(root, f));
    fs.chmodSync(path.join(root, f), 0o755);
  }
}

describe.skipIf(!isRoot)('bundle-vol -P mbr / -P gpt: GRUB 2 disk images', () => {
  let scratch: Scratch;
  let dest: string;
  let env: NodeJS.ProcessEnv;
  let hostGrubTree: string;

  beforeAll(() => {
    scratch = new Scratch('boot');
    dest = scratch.path('dest');
    fs.mkdirSync(dest);
    env = { TMPDIR: scratch.path('tmp') };
    fs.mkdirSync(env.TMPDIR!);
    hostGrubTree = scratch.path('system');
    systemTree(hostGrubTree, false);
  });
  afterAll(() => scratch?.release());

  async function withPartition(
    image: string,
    startSector: number,
    check: (mnt: string) => void,
    nouuid = false,
  ): Promise<void> {
    const mnt = scratch.path(`mnt-${path.basename(image)}`);
    fs.mkdirSync(mnt, { recursive: true });
    sh('mount', ['-o', `ro,loop,offset=${startSector * 512}${nouuid ? ',nouuid' : ''}`, image, mnt]);
    try {
      check(mnt);
    } finally {
      sh('umount', [mnt]);
    }
  }

  /** GRUB's boot.img in the MBR pointing at `kernelSector`, and core.img there, as grub-install made them. */
  function expectGrubEmbedded(image: string, kernelSector: number, bootImg: Buffer, coreImg: Buffer): void {
    const mbr = readAt(image, 0, 512);
    expect(mbr.readBigUInt64LE(0x5c)).toBe(BigInt(kernelSector));
    // The boot code is GRUB's boot.img except the fields grub-install patches (0x5c..0x67).
    const codeDiffs = [...Array(440).keys()].filter((i) => mbr[i] !== bootImg[i]);
    expect(
      codeDiffs.every((i) => i >= 0x5c && i < 0x68),
      `MBR differs from boot.img at ${codeDiffs.join(',')}`,
    ).toBe(true);
    expect(mbr.readUInt16LE(510)).toBe(0xaa55);
    // The core image at that sector: identical but for the block list grub-install writes into it.
    const embedded = readAt(image, kernelSector * 512, coreImg.length);
    const coreDiffs = [...Array(coreImg.length).keys()].filter((i) => embedded[i] !== coreImg[i]);
    expect(coreDiffs.length).toBeLessThan(16);
    expect(coreDiffs.every((i) => i < 1024)).toBe(true);
  }

  function expectConfig(mnt: string, uuid: string, serial: boolean): void {
    const cfg = fs.readFileSync(path.join(mnt, 'boot/grub/grub.cfg'), 'utf8');
    expect(cfg).toContain(`search --no-floppy --fs-uuid --set=root ${uuid}`);
    const linux = /^\s*linux (\S+) (.*)$/m.exec(cfg);
    expect(linux?.[1]).toBe('/boot/vmlinuz-6.1.0-10-test');
    const args = linux![2]!.split(' ');
    expect(args.slice(0, 2)).toEqual([`root=UUID=${uuid}`, 'ro']);
    expect(args).toContain('net.ifnames=0');
    expect(args).toContain('quiet');
    expect(args.filter((a) => a.startsWith('root='))).toHaveLength(1);
    expect(args.includes('console=ttyS0,115200n8')).toBe(serial);
    expect(cfg.includes('terminal_output serial console')).toBe(serial);
    expect(cfg).toMatch(/^\s*initrd \/boot\/initrd\.img-6\.1\.0-10-test$/m);
    expect(fs.existsSync(path.join(mnt, 'boot/grub/i386-pc/normal.mod'))).toBe(true);
    expect(fs.readFileSync(path.join(mnt, 'etc/fstab'), 'utf8')).toMatch(
      new RegExp(`^UUID=${uuid}\\t/\\t`, 'm'),
    );
  }

  it('-P mbr: one bootable partition at 1 MiB, GRUB in the MBR and its gap, root by UUID', async () => {
    const image = path.join(dest, 'mbr.img');
    const r = await runCli(
      'ec2-bundle-vol',
      ['--clone-only', '--batch', '-v', hostGrubTree, '-d', dest, '-p', 'mbr.img', '-P', 'mbr'],
      {
        env,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("this host's grub-install with the image's modules");
    const table = partitionTable(image);
    expect(table.label).toBe('dos');
    expect(table.partitions).toHaveLength(1);
    expect(table.partitions[0]).toMatchObject({ start: 2048, type: '83', bootable: true });
    const fsInfo = blkidAt(image, 2048 * 512);
    expect(fsInfo.TYPE).toBe('ext4');
    const uuid = fsInfo.UUID!;
    expect(r.stdout).toContain(`UUID ${uuid}`);
    await withPartition(image, 2048, (mnt) => {
      expectConfig(mnt, uuid, true);
      expectGrubEmbedded(
        image,
        1,
        fs.readFileSync(path.join(mnt, 'boot/grub/i386-pc/boot.img')),
        fs.readFileSync(path.join(mnt, 'boot/grub/i386-pc/core.img')),
      );
    });
  });

  it('-P auto on a directory with a kernel and GRUB: GPT with a BIOS boot partition; xfs; no serial console', async () => {
    const image = path.join(dest, 'gpt.img');
    const r = await runCli(
      'amibundle',
      [
        'bundle-vol',
        '--clone-only',
        '--batch',
        '-v',
        hostGrubTree,
        '-d',
        dest,
        '-p',
        'gpt.img',
        '--fs-type',
        'xfs',
        '--no-serial-console',
      ],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('making a GPT disk image (-P gpt)');
    const table = partitionTable(image);
    expect(table.label).toBe('gpt');
    expect(table.partitions).toHaveLength(2);
    expect(table.partitions[0]).toMatchObject({ start: 4096, type: '0FC63DAF-8483-4772-8E79-3D69E4772000' });
    expect(table.partitions[1]).toMatchObject({
      start: 2048,
      size: 2048,
      type: '21686148-6449-6E6F-744E-656564454649',
    });
    // partx reads the same table.
    expect(
      sh('partx', ['--show', '--noheadings', '--output', 'NR,START', image])
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/)),
    ).toEqual([
      ['1', '4096'],
      ['2', '2048'],
    ]);
    const fsInfo = blkidAt(image, 4096 * 512);
    expect(fsInfo.TYPE).toBe('xfs');
    const uuid = fsInfo.UUID!;
    await withPartition(image, 4096, (mnt) => {
      expectConfig(mnt, uuid, false);
      expectGrubEmbedded(
        image,
        2048,
        fs.readFileSync(path.join(mnt, 'boot/grub/i386-pc/boot.img')),
        fs.readFileSync(path.join(mnt, 'boot/grub/i386-pc/core.img')),
      );
    });
  });

  it('-v DIR never runs a program of the tree: its grub-install is ignored, the host’s installs GRUB', async () => {
    const tree = scratch.path('system-with-installer');
    systemTree(tree, true);
    const image = path.join(dest, 'own.img');
    const r = await runCli(
      'ec2-bundle-vol',
      ['--clone-only', '--batch', '-v', tree, '-d', dest, '-p', 'own.img', '-P', 'mbr'],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("GRUB installed with this host's grub-install with the image's modules");
    expect(fs.existsSync(path.join(tree, 'tree-program-ran'))).toBe(false);
    const uuid = blkidAt(image, 2048 * 512).UUID!;
    await withPartition(image, 2048, (mnt) => {
      expect(fs.existsSync(path.join(mnt, 'tree-program-ran'))).toBe(false);
      expectConfig(mnt, uuid, true);
      expectGrubEmbedded(
        image,
        1,
        fs.readFileSync(path.join(mnt, 'boot/grub/i386-pc/boot.img')),
        fs.readFileSync(path.join(mnt, 'boot/grub/i386-pc/core.img')),
      );
    });
  });

  it("-P auto on a mounted partition takes its disk's table type; --grub-config is used as it is", async () => {
    // The source system lives in partition 1 of an MBR disk (a loop device here; xvda, sda or nvme0n1 on EC2).
    const disk = scratch.path('source-disk.img');
    fs.writeFileSync(disk, '');
    fs.truncateSync(disk, 400 * 1024 * 1024);
    sh('sfdisk', ['--quiet', disk], 'label: dos\nstart=2048, type=83, bootable\n');
    const loop = sh('losetup', ['--find', '--show', '--partscan', disk]).trim();
    if (!fs.existsSync(`${loop}p1`)) sh('partx', ['--add', loop]);
    for (let i = 0; i < 50 && !fs.existsSync(`${loop}p1`); i++) await new Promise((r) => setTimeout(r, 100));
    sh('mke2fs', ['-q', '-t', 'ext4', '-L', 'srcroot', `${loop}p1`]);
    const sourceUuid = sh('blkid', ['-p', '-o', 'value', '-s', 'UUID', `${loop}p1`]).trim();
    const src = scratch.path('partition-root');
    fs.mkdirSync(src);
    sh('mount', [`${loop}p1`, src]);
    systemTree(src, false);
    const mine = scratch.path('my-grub.cfg');
    fs.writeFileSync(mine, '# my own configuration\nset timeout=7\n');

    const image = path.join(dest, 'auto.img');
    const r = await runCli(
      'ec2-bundle-vol',
      ['--clone-only', '--batch', '-v', src, '-d', dest, '-p', 'auto.img', '--grub-config', mine],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Partition table of ${loop} detected: dos; using -P mbr.`);
    expect(partitionTable(image).label).toBe('dos');
    const fsInfo = blkidAt(image, 2048 * 512);
    expect(fsInfo).toMatchObject({ TYPE: 'ext4', UUID: sourceUuid, LABEL: 'srcroot' });
    await withPartition(image, 2048, (mnt) => {
      expect(fs.readFileSync(path.join(mnt, 'boot/grub/grub.cfg'), 'utf8')).toBe(
        '# my own configuration\nset timeout=7\n',
      );
      expect(fs.readFileSync(path.join(mnt, 'etc/fstab'), 'utf8')).toContain(`UUID=${sourceUuid}\t/\t`);
    });
  });

  it('-v DIR on a host without grub-install is refused, naming the package, before any work', async () => {
    // This host's programs minus GRUB's, so the tree's grub-install would be the only one.
    const bin = scratch.path('path-without-grub');
    fs.mkdirSync(bin);
    for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])
      for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : [])
        if (!name.startsWith('grub') && !fs.existsSync(path.join(bin, name)))
          fs.symlinkSync(path.join(dir, name), path.join(bin, name));
    const tree = scratch.path('system-no-host-grub');
    systemTree(tree, true);
    const r = await runCli(
      'ec2-bundle-vol',
      ['--clone-only', '--batch', '-v', tree, '-d', dest, '-p', 'nohostgrub.img', '-P', 'mbr'],
      { env: { ...env, PATH: bin } },
    );
    expect(r.code, r.stdout).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      /this host has no grub-install.*never run.*install grub2-common and grub-pc-bin/,
    );
    expect(fs.existsSync(path.join(dest, 'nohostgrub.img'))).toBe(false);
    expect(fs.existsSync(path.join(tree, 'tree-program-ran'))).toBe(false);
  });

  it('a -v DIR tree without GRUB gets the host’s modules; one without a kernel is refused before any work', async () => {
    const noGrub = scratch.path('no-grub');
    fs.mkdirSync(path.join(noGrub, 'boot'), { recursive: true });
    fs.writeFileSync(path.join(noGrub, 'boot/vmlinuz-6.1.0-1'), 'k');
    let r = await runCli(
      'ec2-bundle-vol',
      ['--clone-only', '--batch', '-v', noGrub, '-d', dest, '-p', 'nogrub.img', '-P', 'gpt'],
      { env },
    );
    // The tree is data: this host's grub-install with this host's modules makes it bootable.
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("GRUB installed with this host's grub-install with this host's modules");

    const noKernel = scratch.path('no-kernel');
    fs.mkdirSync(path.join(noKernel, 'usr/lib/grub'), { recursive: true });
    execFileSync('cp', ['-a', '/usr/lib/grub/i386-pc', path.join(noKernel, 'usr/lib/grub/')]);
    r = await runCli(
      'ec2-bundle-vol',
      ['--clone-only', '--batch', '-v', noKernel, '-d', dest, '-p', 'nokernel.img', '-P', 'mbr'],
      { env },
    );
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/has no kernel in \/boot/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.existsSync(path.join(dest, 'nokernel.img'))).toBe(false);
  });

  it('leaves no mount, loop device, work directory or partial image behind', () => {
    expect(loopDevices().filter((l) => l.file.startsWith(dest))).toEqual([]);
    expect(fs.readdirSync(dest).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(workDirs(env.TMPDIR)).toEqual([]);
  });
});
