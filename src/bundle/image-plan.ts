// Decides how the image becomes a tar member: plain, or GNU sparse with a data map, following
// GNU tar 1.34 for `--sparse=fs` (a plain member unless the file's allocated blocks fall short
// of its size, then the map from SEEK_DATA/SEEK_HOLE).
import type { FileHandle } from 'node:fs/promises';
import { BundleError } from '../errors.js';
import { dataExtents, isSparseFile, scanZeroHoles, type Extent } from '../io/extents.js';
import type { SparseMode } from './bundle-options.js';

export interface ImagePlan {
  readonly size: number;
  readonly mode: number;
  readonly mtime: number;
  /** Regions of the file to read, in order. */
  readonly extents: readonly Extent[];
  /** Present when the member is written as a GNU sparse member. */
  readonly sparseMap?: readonly Extent[];
  /** Bytes of data read from the image (= bytes stored in the tar member). */
  readonly dataBytes: number;
}

export async function planImage(image: FileHandle, imagePath: string, mode: SparseMode): Promise<ImagePlan> {
  const stat = await image.stat();
  if (!stat.isFile()) throw new BundleError(`${imagePath} is not a regular file`);
  const base = { size: stat.size, mode: stat.mode & 0o7777, mtime: Math.floor(stat.mtimeMs / 1000) };
  const whole: Extent[] = stat.size > 0 ? [{ offset: 0, length: stat.size }] : [];
  const plain = (): ImagePlan => ({ ...base, extents: whole, dataBytes: stat.size });
  if (mode === 'none' || stat.size === 0) return plain();
  const sparse = isSparseFile(stat);
  if (mode === 'fs') {
    if (!sparse) return plain();
    const map = await dataExtents(image.fd, stat.size);
    return { ...base, extents: map, sparseMap: map, dataBytes: sum(map) };
  }
  const candidates = sparse ? await dataExtents(image.fd, stat.size) : whole;
  const map = await scanZeroHoles(image.fd, candidates, 512);
  if (!sparse && map.length === 1 && map[0]!.offset === 0 && map[0]!.length === stat.size) return plain();
  return { ...base, extents: map, sparseMap: map, dataBytes: sum(map) };
}

function sum(extents: readonly Extent[]): number {
  return extents.reduce((s, e) => s + e.length, 0);
}
