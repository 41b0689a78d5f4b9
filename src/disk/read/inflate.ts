// Inflating one compressed cluster or grain with the output capped at its size: a crafted stream
// (a deflate bomb, a stream that never ends, garbage) costs at most one cluster of memory and
// ends in one clear error, never a raw zlib error or a huge allocation.
import zlib from 'node:zlib';
import type { ImageFile } from './image-file.js';

/**
 * `compressed` inflated: raw deflate (qcow2) or a zlib stream (VMDK). The result is at most
 * `max` bytes and at least `min`; bytes after the end of the stream (sector padding) are ignored.
 */
export function inflateCapped(
  file: ImageFile,
  compressed: Buffer,
  kind: 'raw' | 'zlib',
  min: number,
  max: number,
  what: string,
): Buffer {
  let out: Buffer;
  try {
    const opts = { maxOutputLength: max };
    out = kind === 'raw' ? zlib.inflateRawSync(compressed, opts) : zlib.inflateSync(compressed, opts);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE')
      throw file.error(`corrupt: the ${what} inflates to more than its ${max} bytes`);
    throw file.error(`corrupt: the ${what} does not inflate (${(error as Error).message})`);
  }
  if (out.length < min)
    throw file.error(`corrupt: the ${what} inflates to ${out.length} bytes, short of ${min}`);
  return out;
}
