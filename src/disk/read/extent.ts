// What every disk image reader hands out: the guest's bytes as ascending, contiguous extents from
// 0 to the virtual size, each either data (at most MAX_CHUNK bytes, a buffer the consumer may
// keep) or a hole that reads as zeros. The format readers only yield what they find mapped, in
// guest order; normalized() fills the gaps with holes, merges neighbouring holes, cuts data to
// MAX_CHUNK and clips everything at the virtual size, so every format obeys the same contract.
import type { DiskFormat } from '../image-sink.js';

export interface ImageExtent {
  readonly offset: number;
  readonly length: number;
  /** The bytes; absent for a hole (reads as zeros). */
  readonly data?: Buffer;
}

export interface DiskImage {
  readonly path: string;
  /** What the headers say the file is; `vhd` is a dynamic VHD, `vhd-fixed` a fixed one. */
  readonly format: DiskFormat;
  /** Bytes the guest sees. */
  readonly virtualSize: number;
  /** The whole guest, in ascending order; may be iterated again. Memory stays bounded. */
  extents(): AsyncIterable<ImageExtent>;
  close(): Promise<void>;
}

/** Largest data extent handed out. */
export const MAX_CHUNK = 1024 * 1024;

/** The readers' raw findings made into the contract above (see the opening comment). */
export async function* normalized(
  found: AsyncIterable<ImageExtent>,
  virtualSize: number,
): AsyncIterable<ImageExtent> {
  let at = 0;
  let hole = 0; // length of the hole pending at `at - hole`
  for await (const e of found) {
    if (e.offset < at) throw new Error(`disk reader: extent at ${e.offset} goes back before ${at}`);
    if (e.offset >= virtualSize) break;
    const length = Math.min(e.length, virtualSize - e.offset);
    if (length <= 0) continue;
    hole += e.offset - at;
    at = e.offset;
    if (!e.data) {
      hole += length;
      at += length;
      continue;
    }
    if (hole > 0) yield { offset: at - hole, length: hole };
    hole = 0;
    for (let done = 0; done < length; done += MAX_CHUNK) {
      const n = Math.min(MAX_CHUNK, length - done);
      yield { offset: at + done, length: n, data: e.data.subarray(done, done + n) };
    }
    at += length;
  }
  hole += virtualSize - at;
  if (hole > 0) yield { offset: virtualSize - hole, length: hole };
}
