// An EBS snapshot written out: as a disk image file (raw or any format the restore writes), or as
// an instance-store bundle. The blocks come from read-snapshot.ts in ascending order and go
// through the restore's image sinks; holes (blocks the snapshot does not list) are never written.
//
// A bundle goes through a sparse temporary raw image next to the parts: the bundler reads an image
// file (its tar member's sparse map comes from SEEK_DATA/SEEK_HOLE before the first data byte, and
// it reads through a file handle), so the snapshot is written there first, holes kept, and
// removed once the bundle is done or has failed. Disk cost: the snapshot's data blocks.
import fs from 'node:fs';
import path from 'node:path';
import { bundleImage } from '../bundle/bundle-image.js';
import type { BundleImageOptions } from '../bundle/bundle-options.js';
import { createImageSink } from '../disk/create-sink.js';
import { DISK_FORMAT_SUFFIX, type DiskFormat, type ImageSink } from '../disk/image-sink.js';
import { UsageError } from '../errors.js';
import { ownedTempPath, trackTemp, untrackTemp } from '../io/owned-temp.js';
import { readSnapshotBlocks, type ReadOptions, type SnapshotFacts } from './read-snapshot.js';

const GIB = 2 ** 30;

export type SnapshotReadStats = Awaited<ReturnType<typeof readSnapshotBlocks>>;

/** Refuses a non-raw FILE without its format's suffix (checked before any request is sent). */
export function checkOutputName(file: string, format: DiskFormat): void {
  const suffix = DISK_FORMAT_SUFFIX[format];
  const base = path.basename(file);
  if (!base.endsWith(suffix) || base === suffix)
    throw new UsageError(
      `--output ${file}: a ${format} image is written as NAME${suffix}; give -o ${file}${suffix}`,
    );
}

/** The image sink for FILE exactly. */
function imageSinkFor(file: string, format: DiskFormat, facts: SnapshotFacts): ImageSink {
  checkOutputName(file, format);
  const base = path.basename(file);
  const suffix = DISK_FORMAT_SUFFIX[format];
  const member = {
    name: base,
    mode: 0o644,
    mtime: Math.floor(Date.now() / 1000),
    size: facts.volumeGiB * GIB,
  };
  return createImageSink(
    format,
    path.dirname(path.resolve(file)),
    member,
    base.slice(0, base.length - suffix.length),
  );
}

/** The snapshot as FILE in `format`, under its final name only once every block checked out. */
export async function snapshotToImage(
  read: ReadOptions,
  facts: SnapshotFacts,
  file: string,
  format: DiskFormat,
): Promise<{ written: string; replaced?: string; stats: SnapshotReadStats }> {
  const sink = imageSinkFor(file, format, facts);
  await sink.open();
  try {
    const stats = await readSnapshotBlocks(read, facts, sink);
    const written = await sink.commit();
    return { written, ...(sink.replaced ? { replaced: sink.replaced } : {}), stats };
  } catch (err) {
    await sink.discard();
    throw err;
  }
}

/** The snapshot as an instance-store bundle named `name` in `base.destination`. */
export async function snapshotToBundle(
  read: ReadOptions,
  facts: SnapshotFacts,
  base: Omit<BundleImageOptions, 'imagePath' | 'name'>,
  name: string,
): Promise<{ written: string; stats: SnapshotReadStats; parts: string[] }> {
  const destination = path.resolve(base.destination ?? '/tmp');
  // The raw image the bundler reads: sparse, private, removed whatever happens.
  const temp = ownedTempPath(destination, name, 'tmp');
  const raw = createImageSink(
    'raw',
    destination,
    { name, mode: 0o600, mtime: Math.floor(Date.now() / 1000), size: facts.volumeGiB * GIB },
    path.basename(temp),
  );
  trackTemp(temp);
  try {
    await raw.open();
    let stats;
    try {
      stats = await readSnapshotBlocks(read, facts, raw);
      await raw.commit();
    } catch (err) {
      await raw.discard();
      throw err;
    }
    const result = await bundleImage({ ...base, destination, imagePath: temp, name });
    return { written: result.manifestLocation, stats, parts: result.parts.map((p) => p.filename) };
  } finally {
    await fs.promises.rm(temp, { force: true });
    untrackTemp(temp);
  }
}
