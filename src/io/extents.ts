// Where an image file holds data: SEEK_DATA/SEEK_HOLE through the native addon, as GNU tar 1.34 does,
// with a TypeScript fallback when the addon is missing or the filesystem refuses SEEK_DATA.
//
// The fallback reads the file and calls every all-zero filesystem block (st_blksize, normally 4096)
// a hole. That equals SEEK_DATA exactly when no written filesystem block of a sparse file is all zeros
// (true for the golden fixtures: their case.json notes say so); otherwise a written zero block
// becomes a hole in the map. Fully allocated files (not sparse by GNU tar's st_blocks test) are one
// extent without reading, as SEEK_DATA reports them (fallocate()d but never written ranges are the
// one difference: SEEK_DATA calls those holes). Either way the bytes archived are identical, since a
// hole reads as zeros; only the tar's sparse map differs.
import fs from 'node:fs';
import { promisify } from 'node:util';
import { nativeAddon } from './native.js';
import { isAllZero, zeroBlocks, zeroBlocksTs } from './zero-scan.js';

export interface Extent {
  readonly offset: number;
  readonly length: number;
}

export interface ExtentOptions {
  /** false forces the TypeScript fallback (tests, bench); default: the addon when loaded. */
  readonly native?: boolean;
}

const fstat = promisify(fs.fstat);
const read = promisify(fs.read);

/** Read size for scans: large, and a multiple of every block size used here. */
const CHUNK = 1 << 20;

/** errno names for "this filesystem or kernel cannot answer SEEK_DATA": fall back instead of failing. */
const SEEK_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** GNU tar 1.34's ST_IS_SPARSE: fewer 512-byte blocks allocated than the size needs. */
export function isSparseFile(stat: Pick<fs.Stats, 'size' | 'blocks'>): boolean {
  return stat.blocks < Math.ceil(stat.size / 512);
}

/** Collects extents in file order, merging each one that starts where the previous ended. */
class ExtentList {
  readonly list: Extent[] = [];
  private lastEnd = -1;

  add(offset: number, length: number): void {
    if (length <= 0) return;
    const last = this.list.length - 1;
    if (offset === this.lastEnd && last >= 0) {
      this.list[last] = { offset: this.list[last]!.offset, length: this.list[last]!.length + length };
    } else {
      this.list.push({ offset, length });
    }
    this.lastEnd = offset + length;
  }
}

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0)
    throw new RangeError(`file size must be a safe integer >= 0, got ${size}`);
}

/** Fills `buf[0, length)` from `position`, stopping early only at end of file; returns bytes read. */
async function readFully(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await read(fd, buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** Data regions of the first `size` bytes of the open file `fd`: sorted, merged, clipped to `size`. */
export async function dataExtents(fd: number, size: number, opts: ExtentOptions = {}): Promise<Extent[]> {
  checkSize(size);
  const addon = opts.native === false ? undefined : nativeAddon();
  if (addon) {
    try {
      const flat = addon.dataExtents(fd, size);
      const out: Extent[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) out.push({ offset: flat[i]!, length: flat[i + 1]! });
      return out;
    } catch (err) {
      if (!SEEK_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    }
  }
  return scanDataExtents(fd, size, opts.native !== false);
}

/** The fallback: zero-block scan at filesystem block granularity (see the file comment). */
async function scanDataExtents(fd: number, size: number, useNative: boolean): Promise<Extent[]> {
  const st = await fstat(fd);
  const limit = Math.min(size, st.size);
  if (limit === 0) return [];
  if (!isSparseFile(st)) return [{ offset: 0, length: limit }];

  const blockSize = st.blksize > 0 ? st.blksize : 4096;
  const chunk = Math.max(blockSize, CHUNK - (CHUNK % blockSize));
  const scan = useNative ? zeroBlocks : zeroBlocksTs;
  const buf = Buffer.allocUnsafe(chunk);
  const out = new ExtentList();
  for (let pos = 0; pos < limit; pos += chunk) {
    const n = await readFully(fd, buf, Math.min(chunk, limit - pos), pos);
    const zero = scan(buf.subarray(0, n), blockSize);
    for (let b = 0; b < zero.length; b++) {
      if (zero[b] === 0) out.add(pos + b * blockSize, Math.min(blockSize, n - b * blockSize));
    }
    if (n < Math.min(chunk, limit - pos)) break; // the file shrank under us
  }
  return out.list;
}

/**
 * For --sparse=zeros: within the data `extents` (sorted), drops every all-zero block of `blockSize`
 * bytes aligned to absolute file offsets, so runs of written zeros become holes too. A block cut
 * by an extent's edge is judged on the part inside the extent.
 */
export async function scanZeroHoles(
  fd: number,
  extents: readonly Extent[],
  blockSize = 512,
  opts: ExtentOptions = {},
): Promise<Extent[]> {
  if (!Number.isSafeInteger(blockSize) || blockSize < 1 || CHUNK % blockSize !== 0) {
    throw new RangeError(`scanZeroHoles: blockSize must divide ${CHUNK}, got ${blockSize}`);
  }
  const scan = opts.native === false ? zeroBlocksTs : zeroBlocks;
  const allZero = opts.native === false ? (b: Uint8Array) => zeroBlocksTs(b, b.length)[0] === 1 : isAllZero;
  const buf = Buffer.allocUnsafe(CHUNK);
  const out = new ExtentList();
  for (const e of extents) {
    const end = e.offset + e.length;
    let pos = e.offset;
    while (pos < end) {
      // Chunks end on absolute CHUNK boundaries, so only an extent's first block can start unaligned.
      const want = Math.min(CHUNK - (pos % CHUNK), end - pos);
      const n = await readFully(fd, buf, want, pos);
      if (n === 0) break; // past end of file
      let i = 0;
      const head = pos % blockSize;
      if (head !== 0) {
        i = Math.min(blockSize - head, n);
        if (!allZero(buf.subarray(0, i))) out.add(pos, i);
      }
      const zero = scan(buf.subarray(i, n), blockSize);
      for (let b = 0; b < zero.length; b++) {
        const at = i + b * blockSize;
        if (zero[b] === 0) out.add(pos + at, Math.min(blockSize, n - at));
      }
      pos += n;
      if (n < want) break;
    }
  }
  return out.list;
}
