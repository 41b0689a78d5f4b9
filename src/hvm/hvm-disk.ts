// makeHvmDisk(): a partitionless file-system image (an old paravirtual instance-store AMI, or
// `bundle-vol -P none`) -> a whole disk that boots on HVM: a partition table (MBR, or GPT with a
// BIOS boot partition), the file system as partition 1, GRUB 2 for BIOS from this host's tools,
// booting the newest kernel in the image's /boot by root UUID with a serial console, and an fstab
// without the PV instance's extra disks. The image is data, never run: no chroot, no hooks, no
// update-grub. The disk is assembled in a sparse file in a private directory next to the output,
// on a loop device, then written in the requested format; the output's name appears only when it
// is complete, and the loop device, mount and temporary files go on every path out.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImageWriter } from '../restore/image-writer.js';
import { Qcow2Sink } from '../disk/qcow2.js';
import { VhdDynamicSink, VhdFixedSink } from '../disk/vhd.js';
import { VmdkSink } from '../disk/vmdk.js';
import type { DiskFormat, ImageSink } from '../disk/image-sink.js';
import type { Reporter } from '../events.js';
import { silentReporter } from '../events.js';
import { AmiError, MissingFileError } from '../errors.js';
import type { TarMember } from '../format/tar-reader.js';
import { isAllZero } from '../io/zero-scan.js';
import { CleanupStack } from '../volume/cleanup-stack.js';
import { attachLoop, createImageFile, partitionImage, ROOT_START_SECTOR } from '../volume/disk-image.js';
import { findKernel, installGrub, kernelCommandLine, type KernelFiles } from '../volume/grub.js';
import { pathInImage } from '../volume/image-path.js';
import { mountWithUndo } from '../volume/mounts.js';
import { notInstalled, onPath, runTool } from '../io/run-tool.js';
import { hvmFstab } from './pv-fstab.js';

const MiB = 1024 * 1024;
/** Copy unit: the image is read this much at a time, and all-zero pieces are left as holes. */
const PIECE = MiB;

export type HvmPartition = 'mbr' | 'gpt';

export interface HvmDiskOptions {
  /** The partitionless file-system image (a raw file). */
  readonly image: string;
  /** What messages call the image (default its path). */
  readonly label?: string;
  /** The disk's final path (written in `format`). */
  readonly output: string;
  readonly format: DiskFormat;
  readonly partition: HvmPartition;
  /** `--kernel-from`: a directory with vmlinuz-* (and initrd.img-*) to put in the image's /boot. */
  readonly kernelFrom?: string;
  readonly signal?: AbortSignal;
  readonly out?: Reporter;
}

export interface HvmDiskResult {
  readonly path: string;
  /** Virtual size of the disk. */
  readonly sizeBytes: number;
  readonly fsType: string;
  readonly uuid: string;
  readonly kernel: string;
  readonly grub: string;
  readonly seconds: number;
}

const BOOTABLE_FS = ['ext2', 'ext3', 'ext4', 'xfs'];

/** What blkid finds in the image: its file system (type, UUID) or a partition table. */
async function probeImage(
  image: string,
  label: string,
  out: Reporter,
): Promise<{ type: string; uuid: string }> {
  const r = await runTool('blkid', ['-p', '-o', 'export', image], {
    out,
    okCodes: [2],
    what: `probing ${image} (blkid)`,
  });
  const v = new Map(
    r.stdout
      .split('\n')
      .map((l) => /^([A-Z_]+)=(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
  if (v.has('PTTYPE'))
    throw new AmiError(
      `${label} holds a partition table (${v.get('PTTYPE')}): it is already a whole disk`,
      undefined,
      '--hvm turns a partitionless file-system image (a paravirtual AMI) into a bootable disk',
    );
  const type = v.get('TYPE');
  if (!type || !BOOTABLE_FS.includes(type))
    throw new AmiError(
      `${label} holds ${type ? `a ${type} file system` : 'no file system blkid knows'}; --hvm needs ext2/3/4 or xfs`,
      undefined,
      'GRUB must read the root file system: only partitionless ext2/3/4 and xfs images are converted',
    );
  const uuid = v.get('UUID');
  if (!uuid)
    throw new AmiError(
      `the ${type} file system in ${label} has no UUID`,
      undefined,
      'give it one (tune2fs -U random)',
    );
  return { type, uuid };
}

/** The kernels of `--kernel-from DIR`, checked before any work. */
function kernelFiles(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    throw new MissingFileError(`--kernel-from ${dir}: no such directory`);
  }
  const files = names.filter((n) => /^(vmlinuz|initrd\.img|initramfs|config|System\.map)-/.test(n));
  if (!files.some((n) => n.startsWith('vmlinuz-')))
    throw new MissingFileError(
      `--kernel-from ${dir} holds no vmlinuz-* kernel`,
      'give a directory with vmlinuz-VERSION and initrd.img-VERSION (a /boot of the same distribution)',
    );
  return files;
}

/** The sink that writes the disk as `output` exactly (no suffix added). */
function sinkAt(format: DiskFormat, output: string, member: TarMember): ImageSink {
  const dir = path.dirname(output);
  const base = path.basename(output);
  switch (format) {
    case 'raw':
      return new ImageWriter(dir, member, base);
    case 'qcow2':
      return new Qcow2Sink(output, member);
    case 'vmdk':
      return new VmdkSink(output, member);
    case 'vhd':
      return new VhdDynamicSink(output, member);
    case 'vhd-fixed':
      return new VhdFixedSink(dir, member, base);
  }
}

/** Copies `from` into `to` at `at`, leaving all-zero pieces as holes. */
async function copySparse(
  from: string,
  each: (offset: number, data: Buffer) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const handle = await fs.promises.open(from, 'r');
  try {
    const buf = Buffer.allocUnsafeSlow(PIECE);
    for (let at = 0; ;) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buf, 0, PIECE, at);
      if (bytesRead === 0) return;
      const piece = buf.subarray(0, bytesRead);
      if (!isAllZero(piece)) await each(at, piece);
      at += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

async function writeAt(handle: fs.promises.FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** The newest kernel in the image's /boot, after copying --kernel-from's files there. */
async function bootKernel(mnt: string, opts: HvmDiskOptions, out: Reporter): Promise<KernelFiles> {
  if (opts.kernelFrom) {
    const boot = pathInImage(mnt, 'boot');
    await fs.promises.mkdir(boot, { recursive: true, mode: 0o755 });
    for (const f of kernelFiles(opts.kernelFrom)) {
      await fs.promises.copyFile(path.join(opts.kernelFrom, f), path.join(boot, f));
      out.info(`Copied ${f} from ${opts.kernelFrom} into the image's /boot.`);
    }
  }
  const kernel = findKernel(mnt);
  if (!kernel)
    throw new AmiError(
      `${opts.label ?? opts.image} has no kernel in /boot: this image booted a kernel from an AKI; give one with --kernel-from PATH`,
    );
  return kernel;
}

/** What --hvm needs of this host (root, the tools) and of --kernel-from, checked before any work. */
export function checkHvmHost(kernelFrom?: string): void {
  if (process.getuid?.() !== 0)
    throw new AmiError(
      '--hvm must run as root: it attaches the disk to a loop device and mounts it',
      undefined,
      'run it with sudo',
    );
  for (const tool of ['losetup', 'mount', 'umount', 'blkid', 'sfdisk', 'partx', 'udevadm'])
    if (!onPath(tool)) throw notInstalled(tool);
  if (!onPath('grub-install') && !onPath('grub2-install')) throw notInstalled('grub-install');
  if (kernelFrom) kernelFiles(kernelFrom);
}

export async function makeHvmDisk(opts: HvmDiskOptions): Promise<HvmDiskResult> {
  const started = process.hrtime.bigint();
  const out = opts.out ?? silentReporter;
  checkHvmHost(opts.kernelFrom);
  const st = await fs.promises.stat(opts.image);
  const fsInfo = await probeImage(opts.image, opts.label ?? opts.image, out);
  const scheme = opts.partition;
  const startBytes = ROOT_START_SECTOR[scheme] * 512;
  // Partition 1 runs from its start to the end, 1 MiB past the file system (room for GPT's backup).
  const sizeMiB = (startBytes + Math.ceil(st.size / MiB) * MiB) / MiB + 1;
  out.info(
    `Making a ${scheme.toUpperCase()} disk of ${sizeMiB} MiB from the ${fsInfo.type} image ${opts.label ?? opts.image} (UUID ${fsInfo.uuid}).`,
  );

  const cleanup = new CleanupStack(out);
  try {
    const work = await fs.promises.mkdtemp(path.join(path.dirname(opts.output), '.amibundle-hvm-'));
    cleanup.push(
      `remove ${work}`,
      () => fs.promises.rm(work, { recursive: true, force: true }),
      () => fs.rmSync(work, { recursive: true, force: true }),
    );
    const mnt = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'amibundle-hvm-root-'));
    cleanup.push(
      `remove ${mnt}`,
      () => fs.promises.rmdir(mnt),
      () => fs.rmdirSync(mnt),
    );
    const disk = path.join(work, 'disk.raw');
    await createImageFile(disk, sizeMiB, cleanup);
    await partitionImage(disk, scheme, out);
    const handle = await fs.promises.open(disk, 'r+');
    try {
      await copySparse(opts.image, (offset, data) => writeAt(handle, data, startBytes + offset), opts.signal);
    } finally {
      await handle.close();
    }

    const loop = await attachLoop(disk, scheme, cleanup, out);
    const unmount = await mountWithUndo(
      // ext4: no background inode-table zeroing (it would fill the holes); xfs: the source image
      // may be mounted elsewhere with the same UUID.
      [
        '-t',
        fsInfo.type,
        ...({ ext4: ['-o', 'noinit_itable'], xfs: ['-o', 'nouuid'] }[fsInfo.type] ?? []),
        loop.rootDevice,
      ],
      mnt,
      cleanup,
      out,
    );
    const kernel = await bootKernel(mnt, opts, out);

    const fstab = pathInImage(mnt, 'etc/fstab');
    const current = await fs.promises.readFile(fstab, 'utf8').catch(() => undefined);
    if (current !== undefined) {
      const adjusted = hvmFstab(current, { uuid: fsInfo.uuid, type: fsInfo.type });
      for (const n of adjusted.notes) out.info(n);
      if (adjusted.changed) {
        const mode = (await fs.promises.stat(fstab)).mode & 0o7777;
        await fs.promises.writeFile(fstab, adjusted.text, { mode });
      }
    }

    out.info(`Installing GRUB 2 (i386-pc) from this host; kernel ${kernel.kernel}.`);
    const grub = await installGrub({
      root: mnt,
      runImageTools: false,
      disk: loop.device,
      config: {
        uuid: fsInfo.uuid,
        fsType: fsInfo.type,
        scheme,
        kernel,
        cmdline: kernelCommandLine(mnt, fsInfo.uuid, true),
        serialConsole: true,
        title: `${path.basename(opts.output)}${kernel.version ? `, Linux ${kernel.version}` : ''}`,
      },
      cleanup,
      ...(opts.signal ? { signal: opts.signal } : {}),
      out,
    });
    out.info(`GRUB installed with ${grub.installer}; configuration ${grub.configPath}.`);
    await unmount();
    await loop.detach();

    const sizeBytes = sizeMiB * MiB;
    const sink = sinkAt(opts.format, opts.output, {
      name: path.basename(opts.output),
      mode: st.mode & 0o7777,
      mtime: Math.floor(Date.now() / 1000),
      size: sizeBytes,
    });
    await sink.open();
    try {
      await copySparse(disk, (offset, data) => sink.write(offset, data), opts.signal);
      await sink.commit();
    } catch (err) {
      await sink.discard();
      throw err;
    }
    if (sink.replaced) out.info(`Replaced the existing ${opts.output} (${sink.replaced})`);
    return {
      path: opts.output,
      sizeBytes,
      fsType: fsInfo.type,
      uuid: fsInfo.uuid,
      kernel: kernel.kernel,
      grub: grub.installer,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
  } finally {
    const leftovers = await cleanup.unwind();
    for (const l of leftovers) out.warn(`clean-up failed: ${l}`);
  }
}
