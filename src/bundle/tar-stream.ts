// The tar stream of a bundle, produced from the image in one read pass: member header (plain or
// GNU sparse), the data of each extent, padding, end-of-archive. Its SHA-1 is computed here, as
// the bytes are produced, because the manifest's <digest> is the digest of exactly this stream.
import crypto from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Extent } from '../io/extents.js';
import {
  dataPadding,
  endOfArchiveLength,
  memberHeaderBlocks,
  storedSize,
  type MemberInfo,
} from '../format/tar-header.js';

/** Large reads keep syscalls few; 1 MiB is also a good unit for the parallel compressor. */
export const READ_SIZE = 1024 * 1024;

export interface TarStreamResult {
  /** SHA-1 (hex) of every byte produced. */
  digest: string;
  /** Bytes produced. */
  length: number;
}

/**
 * Yields the tar stream. `extents` are the regions to read: for a sparse member its map; for a
 * plain member the whole file. `result` is filled in when the generator completes.
 */
export async function* tarStream(
  image: FileHandle,
  member: MemberInfo,
  extents: readonly Extent[],
  result: TarStreamResult,
  onData?: (bytes: number) => void,
  /** Where read buffers come from (a BufferRing); default: a fresh buffer per read. */
  acquire?: () => Promise<Buffer>,
): AsyncGenerator<Buffer> {
  const sha1 = crypto.createHash('sha1');
  let length = 0;
  const emit = (chunk: Buffer): Buffer => {
    sha1.update(chunk);
    length += chunk.length;
    return chunk;
  };
  yield emit(memberHeaderBlocks(member));
  let stored = 0;
  for (const extent of extents) {
    let position = extent.offset;
    const end = extent.offset + extent.length;
    while (position < end) {
      const want = Math.min(READ_SIZE, end - position);
      const buf = acquire ? (await acquire()).subarray(0, want) : Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await image.read(buf, got, want - got, position + got);
        if (bytesRead === 0)
          throw new Error(`the image shrank while it was being read (at byte ${position + got})`);
        got += bytesRead;
      }
      position += want;
      stored += want;
      onData?.(want);
      yield emit(buf);
    }
  }
  if (stored !== storedSize(member)) throw new Error('internal error: extents do not match the tar header');
  const pad = dataPadding(stored);
  const trailer = Buffer.alloc(pad + endOfArchiveLength(length + pad));
  yield emit(trailer);
  result.digest = sha1.digest('hex');
  result.length = length;
}
