// `amibundle convert IN OUT`: a disk image from one format to another, read by its headers
// (disk/read/: raw, qcow2, VMDK, VHD; never taken for raw bytes when it is a container) and
// written by the same writers `unbundle --format` uses, holes kept, no raw copy in between.
import fs from 'node:fs';
import path from 'node:path';
import { createImageSinkAt } from '../disk/create-sink.js';
import { DISK_FORMATS, type DiskFormat } from '../disk/image-sink.js';
import { copyImage } from '../disk/read/copy-image.js';
import { openDiskImage } from '../disk/read/detect.js';
import { UsageError } from '../errors.js';
import { formatBytes } from '../format-bytes.js';
import type { Command, RunContext } from './command.js';
import { flag } from './flag-catalog.js';
import { hvmFromOptions, hvmOptions } from './rescue-flags.js';
import { makeHvmDisk } from '../hvm/hvm-disk.js';
import type { DiskImage } from '../disk/read/extent.js';

/** The output format OUT's name implies when --format is not given. */
export function formatFromName(out: string): DiskFormat {
  const ext = path.extname(out).toLowerCase();
  if (ext === '.qcow2') return 'qcow2';
  if (ext === '.vmdk') return 'vmdk';
  if (ext === '.vhd' || ext === '.vpc') return 'vhd';
  return 'raw';
}

export const convertCommand: Command = {
  spec: {
    name: 'convert',
    summary: 'Convert a disk image between raw, qcow2, VMDK and VHD, holes kept.',
    positionals: {
      metavar: 'IN OUT',
      help: 'The image to read (any format, told by its headers) and the file to write.',
    },
    options: [
      flag('format', {
        defaultValue: undefined,
        default: "from OUT's name: .qcow2, .vmdk (streamOptimized), .vhd (dynamic), else raw",
        help: 'Format of OUT: raw (sparse), qcow2 (v3), vmdk (streamOptimized, as AWS VM Import takes), vhd (dynamic) or vhd-fixed.',
      }),
      ...hvmOptions,
    ],
    examples: [
      'amibundle convert disk.qcow2 disk.vmdk',
      'amibundle convert image.vhd image.raw --format raw',
      'amibundle convert image.img image.vhd --format vhd-fixed',
      'sudo amibundle convert pv-root.img disk.vmdk --hvm',
    ],
    manual: `Reads IN as whatever its headers say it is: qcow2 (versions 2 and 3), a sparse VMDK
(monolithicSparse or streamOptimized), a VHD (fixed or dynamic), or else a raw image, and writes
OUT in --format (by default the one OUT's name implies: .qcow2, .vmdk, .vhd, else raw). Holes in
IN stay holes in OUT and are never read; nothing is staged as a raw copy. Images that hold only
part of a disk (a qcow2 with a backing file, a differencing VHD, a VMDK split over several
files) and features that cannot be read exactly (encryption, zstd, external data files) are
refused with one line saying so; convert those with qemu-img first. OUT is written under a
temporary name and appears only when complete; an existing OUT is replaced (the output says so).
With --hvm (root), IN must hold a partitionless file system (an old paravirtual AMI's root,
bundle-vol -P none): OUT becomes a whole disk that boots under HVM, made as unbundle --hvm makes
it (partition table, GRUB 2 for BIOS from this host's GRUB tools, the newest kernel in the
image's /boot by root UUID with a serial console, PV-only fstab entries commented out; nothing
from the image is run). A container IN is first read into a sparse raw file beside OUT, removed
afterwards.
Exit code 254 for a broken or refused image, 2 for a missing IN, 1 for a bad command line.`,
  },

  async run(opts, ctx) {
    if (opts.positionals.length !== 2) throw new UsageError('convert takes two files: IN OUT');
    const [input, output] = opts.positionals as [string, string];
    const format = (opts.str('format') as DiskFormat | undefined) ?? formatFromName(output);
    if (!DISK_FORMATS.includes(format))
      throw new UsageError(`--format ${format}: not one of ${DISK_FORMATS.join(', ')}`);
    const inStat = fs.statSync(input, { throwIfNoEntry: false });
    const outStat = fs.statSync(output, { throwIfNoEntry: false });
    if (inStat && outStat && inStat.dev === outStat.dev && inStat.ino === outStat.ino)
      throw new UsageError(
        `convert: IN and OUT are the same file (${output})`,
        'write OUT under another name',
      );
    const hvm = hvmFromOptions(opts);
    const image = await openDiskImage(input);
    try {
      ctx.out.info(
        `${input}: ${image.format}, ${formatBytes(image.virtualSize)} (${image.virtualSize} bytes)`,
      );
      if (hvm) {
        const disk = await withRawCopy(image, output, ctx, (raw) =>
          makeHvmDisk({
            image: raw,
            label: input,
            output: path.resolve(output),
            format,
            ...hvm,
            signal: ctx.signal,
            out: ctx.out,
          }),
        );
        ctx.out.info(
          `Bootable disk ${disk.path} (${disk.sizeBytes} bytes, ${format}, kernel ${disk.kernel}, root UUID ${disk.uuid})`,
        );
        ctx.out.event({
          type: 'done',
          command: 'convert',
          ok: true,
          input,
          inputFormat: image.format,
          output: disk.path,
          format,
          virtualSize: disk.sizeBytes,
        });
        return;
      }
      const sink = createImageSinkAt(format, path.resolve(output), {
        name: path.basename(output),
        mode: inStat?.isFile() ? inStat.mode & 0o777 : 0o644,
        mtime: Math.floor(Date.now() / 1000),
        size: image.virtualSize,
      });
      const written = await copyImage(image, sink, { signal: ctx.signal, out: ctx.out });
      if (sink.replaced) ctx.out.info(`replaced ${sink.replaced} at ${written}`);
      ctx.out.info(`${written}: ${format}`);
      ctx.out.event({
        type: 'done',
        command: 'convert',
        ok: true,
        input,
        inputFormat: image.format,
        output: written,
        format,
        virtualSize: image.virtualSize,
      });
    } finally {
      await image.close();
    }
  },
};

/**
 * Runs `work` on a raw file holding IN's bytes: IN itself when it is a raw regular file, else a
 * sparse raw copy in a private directory beside OUT (the HVM disk maker mounts a file system,
 * which needs the plain bytes), removed afterwards, on failure and at exit too.
 */
async function withRawCopy<T>(
  image: DiskImage,
  output: string,
  ctx: RunContext,
  work: (raw: string) => Promise<T>,
): Promise<T> {
  if (image.format === 'raw' && fs.statSync(image.path).isFile()) return work(image.path);
  const dir = fs.mkdtempSync(path.join(path.dirname(path.resolve(output)), '.amibundle-convert-'));
  const remove = (): void => fs.rmSync(dir, { recursive: true, force: true });
  process.once('exit', remove);
  try {
    const sink = createImageSinkAt('raw', path.join(dir, 'fs.img'), {
      name: 'fs.img',
      mode: 0o600,
      mtime: Math.floor(Date.now() / 1000),
      size: image.virtualSize,
    });
    const raw = await copyImage(image, sink, { signal: ctx.signal, out: ctx.out });
    return await work(raw);
  } finally {
    remove();
    process.off('exit', remove);
  }
}
