// `unbundle --hvm` as one library call: the bundle's file-system image is restored (every check
// of restoreBundle) into a private directory inside the destination, then made a bootable disk
// NAME[.suffix] in the destination by the disk maker; the directory goes whatever happens, at
// exit too. The raw file system is needed as a file because the disk maker mounts it.
import fs from 'node:fs';
import path from 'node:path';
import { DISK_FORMAT_SUFFIX, type DiskFormat } from '../disk/image-sink.js';
import { restoreBundle } from '../restore/restore.js';
import type { RestoreOptions, RestoreResult } from '../restore/restore-options.js';
import { makeHvmDisk, type HvmDiskResult, type HvmPartition } from './hvm-disk.js';

export interface RestoreHvmOptions extends Omit<RestoreOptions, 'destination' | 'format' | 'imageSink'> {
  readonly destination: string;
  /** Format of the disk (the file system itself is restored raw). */
  readonly format: DiskFormat;
  readonly partition: HvmPartition;
  readonly kernelFrom?: string;
}

/** The restore's result with `imagePath` the bootable disk, and what the disk maker did. */
export async function restoreBundleAsHvmDisk(
  opts: RestoreHvmOptions,
): Promise<{ result: RestoreResult; disk: HvmDiskResult }> {
  const { partition, kernelFrom, format, ...restore } = opts;
  const destination = path.resolve(opts.destination);
  const restoreInto = await fs.promises.mkdtemp(path.join(destination, '.amibundle-hvm-restore-'));
  const remove = (): void => fs.rmSync(restoreInto, { recursive: true, force: true });
  process.once('exit', remove);
  try {
    const result = await restoreBundle({ ...restore, destination: restoreInto, format: 'raw' });
    const name = opts.manifest.manifest.image.name;
    const disk = await makeHvmDisk({
      image: result.imagePath!,
      label: `the image ${name}`,
      output: path.join(destination, name + DISK_FORMAT_SUFFIX[format]),
      format,
      partition,
      ...(kernelFrom ? { kernelFrom } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.out ? { out: opts.out } : {}),
    });
    return { result: { ...result, imagePath: disk.path }, disk };
  } finally {
    remove();
    process.off('exit', remove);
  }
}
