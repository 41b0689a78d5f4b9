// `amibundle convert IN OUT`: a disk image from one format to another, read by its headers
// (disk/read/: raw, qcow2, VMDK, VHD; never taken for raw bytes when it is a container) and
// written by the same writers `unbundle --format` uses, holes kept, no raw copy in between; with
// --hvm, a PV file system made a bootable disk. Flags in, hvm/convert-image.ts does the work.
import fs from 'node:fs';
import path from 'node:path';
import { DISK_FORMATS, type DiskFormat } from '../disk/image-sink.js';
import { openDiskImage } from '../disk/read/detect.js';
import { UsageError } from '../errors.js';
import { formatBytes } from '../format-bytes.js';
import type { Command } from './command.js';
import { convertImage, convertToHvmDisk } from '../hvm/convert-image.js';
import { flag } from './flag-catalog.js';
import { hvmFromOptions, hvmOptions } from './rescue-flags.js';

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
      let written: { path: string; size: number };
      if (hvm) {
        const disk = await convertToHvmDisk(image, {
          output,
          format,
          ...hvm,
          signal: ctx.signal,
          out: ctx.out,
        });
        ctx.out.info(
          `Bootable disk ${disk.path} (${disk.sizeBytes} bytes, ${format}, kernel ${disk.kernel}, root UUID ${disk.uuid})`,
        );
        written = { path: disk.path, size: disk.sizeBytes };
      } else {
        const r = await convertImage(image, {
          output,
          format,
          mode: inStat?.isFile() ? inStat.mode & 0o777 : 0o644,
          signal: ctx.signal,
          out: ctx.out,
        });
        if (r.replaced) ctx.out.info(`replaced ${r.replaced} at ${r.written}`);
        ctx.out.info(`${r.written}: ${format}`);
        written = { path: r.written, size: image.virtualSize };
      }
      ctx.out.event({
        type: 'done',
        command: 'convert',
        ok: true,
        input,
        inputFormat: image.format,
        output: written.path,
        format,
        virtualSize: written.size,
      });
    } finally {
      await image.close();
    }
  },
};
