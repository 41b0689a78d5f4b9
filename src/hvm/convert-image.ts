// `amibundle convert`'s work as library calls: an image file read by its headers (disk/read/)
// written in another format by the restore's writers, holes kept, no raw copy in between; or,
// with --hvm, a partitionless file system in any format made into a bootable whole disk by the
// same disk maker `unbundle --hvm` uses. It lives in hvm/ because the second needs the disk
// maker, and hvm/ already stands on disk/.
import fs from 'node:fs';
import path from 'node:path';
import { createImageSinkAt } from '../disk/create-sink.js';
import type { DiskFormat } from '../disk/image-sink.js';
import { copyImage } from '../disk/read/copy-image.js';
import type { DiskImage } from '../disk/read/extent.js';
import type { Reporter } from '../events.js';
import { makeHvmDisk, type HvmDiskResult, type HvmPartition } from './hvm-disk.js';

export interface ConvertOptions {
  /** The final path of the output (written under a temporary name until complete). */
  readonly output: string;
  readonly format: DiskFormat;
  /** Permission bits of the output. */
  readonly mode: number;
  readonly signal?: AbortSignal;
  readonly out: Reporter;
}

/** `image` written as `opts.output` in `opts.format`; the existing file it replaced, if any. */
export async function convertImage(
  image: DiskImage,
  opts: ConvertOptions,
): Promise<{ written: string; replaced?: string }> {
  const sink = createImageSinkAt(opts.format, path.resolve(opts.output), {
    name: path.basename(opts.output),
    mode: opts.mode,
    mtime: Math.floor(Date.now() / 1000),
    size: image.virtualSize,
  });
  const written = await copyImage(image, sink, { signal: opts.signal, out: opts.out });
  return { written, ...(sink.replaced ? { replaced: sink.replaced } : {}) };
}

export interface HvmConvertOptions extends Omit<ConvertOptions, 'mode'> {
  readonly partition: HvmPartition;
  readonly kernelFrom?: string;
}

/** The file system in `image` (any format) made into a bootable disk at `opts.output`. */
export async function convertToHvmDisk(image: DiskImage, opts: HvmConvertOptions): Promise<HvmDiskResult> {
  return withRawCopy(image, opts, (raw) =>
    makeHvmDisk({
      image: raw,
      label: image.path,
      output: path.resolve(opts.output),
      format: opts.format,
      partition: opts.partition,
      ...(opts.kernelFrom ? { kernelFrom: opts.kernelFrom } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      out: opts.out,
    }),
  );
}

/**
 * Runs `work` on a raw file holding the image's bytes: the image itself when it is a raw regular
 * file, else a sparse raw copy in a private directory beside the output (the disk maker mounts a
 * file system, which needs the plain bytes), removed afterwards, on failure and at exit too.
 */
async function withRawCopy<T>(
  image: DiskImage,
  opts: Omit<HvmConvertOptions, 'partition'>,
  work: (raw: string) => Promise<T>,
): Promise<T> {
  if (image.format === 'raw' && fs.statSync(image.path).isFile()) return work(image.path);
  const dir = fs.mkdtempSync(path.join(path.dirname(path.resolve(opts.output)), '.amibundle-convert-'));
  const remove = (): void => fs.rmSync(dir, { recursive: true, force: true });
  process.once('exit', remove);
  try {
    const { written } = await convertImage(image, {
      output: path.join(dir, 'fs.img'),
      format: 'raw',
      mode: 0o600,
      signal: opts.signal,
      out: opts.out,
    });
    return await work(written);
  } finally {
    remove();
    process.off('exit', remove);
  }
}
