// All-zero block detection over a buffer: the native addon's word-wide scan when it is loaded,
// else a TypeScript scan that reads the aligned middle of each block through a Uint32Array view.
import { nativeAddon } from './native.js';

function checkBlockSize(blockSize: number): void {
  if (!Number.isSafeInteger(blockSize) || blockSize < 1 || blockSize > 0x7fffffff) {
    throw new RangeError(`zeroBlocks: blockSize must be a positive integer, got ${blockSize}`);
  }
}

/** Word view over the whole backing store, so any 4-aligned byte range of `buf` can be read as words. */
function wordView(buf: Uint8Array): Uint32Array {
  return new Uint32Array(buf.buffer, 0, buf.buffer.byteLength >>> 2);
}

/** Bytes [start, end) of the backing store of `bytes`/`words` (absolute offsets) are all zero. */
function rangeIsZero(bytes: Uint8Array, words: Uint32Array, start: number, end: number): boolean {
  let i = start;
  // Unaligned head, byte by byte, up to the first word boundary.
  const head = Math.min(end, (i + 3) & ~3);
  for (; i < head; i++) if (bytes[i] !== 0) return false;
  let w = i >>> 2;
  const wEnd = end >>> 2;
  // Eight words per test: fewer branches than one per word, still leaves early on data.
  for (; w + 8 <= wEnd; w += 8) {
    if (
      (words[w]! |
        words[w + 1]! |
        words[w + 2]! |
        words[w + 3]! |
        words[w + 4]! |
        words[w + 5]! |
        words[w + 6]! |
        words[w + 7]!) !==
      0
    ) {
      return false;
    }
  }
  for (; w < wEnd; w++) if (words[w] !== 0) return false;
  for (i = Math.max(i, wEnd << 2); i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** TypeScript implementation of {@link zeroBlocks}; same result as the addon. */
export function zeroBlocksTs(buf: Uint8Array, blockSize: number): Uint8Array {
  checkBlockSize(blockSize);
  const n = Math.ceil(buf.length / blockSize);
  const out = new Uint8Array(n);
  if (n === 0) return out;
  const bytes = new Uint8Array(buf.buffer, 0, buf.buffer.byteLength);
  const words = wordView(buf);
  const base = buf.byteOffset;
  const end = base + buf.length;
  for (let b = 0; b < n; b++) {
    const s = base + b * blockSize;
    out[b] = rangeIsZero(bytes, words, s, Math.min(end, s + blockSize)) ? 1 : 0;
  }
  return out;
}

/** One byte per `blockSize` block of `buf` (the last block may be short): 1 when all its bytes are zero. */
export function zeroBlocks(buf: Uint8Array, blockSize: number): Uint8Array {
  const addon = nativeAddon();
  if (addon) {
    checkBlockSize(blockSize);
    return addon.zeroBlocks(buf, blockSize);
  }
  return zeroBlocksTs(buf, blockSize);
}

/** Every byte of `buf` is zero (true for an empty buffer). */
export function isAllZero(buf: Uint8Array): boolean {
  if (buf.length === 0) return true;
  const addon = nativeAddon();
  if (addon) return addon.zeroBlocks(buf, Math.min(buf.length, 1 << 30)).every((z) => z === 1);
  return rangeIsZero(
    new Uint8Array(buf.buffer, 0, buf.buffer.byteLength),
    wordView(buf),
    buf.byteOffset,
    buf.byteOffset + buf.length,
  );
}
