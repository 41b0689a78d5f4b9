// How the tar stream is driven into the compressor and on through the stages after it. One home,
// so that `amibundle bench`'s compress stage measures the compressor driven exactly as
// bundle-image drives it (same writes, same back-pressure, same buffer reuse) and not by a stream
// helper of its own: the bench's figure is only worth what the driving it shares is.
import type { Duplex, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { feed } from '../io/stream-feed.js';
import type { BufferRing } from './buffer-ring.js';

/** Read buffers in flight between the image and the compressor (the size of bundle-image's ring). */
export const READ_BUFFERS = 8;

export interface CompressThroughOptions {
  /** Where `chunks`' buffers came from, to be reused once the compressor copied them. */
  readonly ring?: BufferRing;
  readonly signal?: AbortSignal;
}

/**
 * The tar stream `chunks` through `compressor` and then `after` (the cipher and the part
 * splitter in a bundle; a collector in the bench), fed by feed(). Resolves when the last stage
 * has finished; the first failure anywhere rejects it.
 */
export async function compressThrough(
  chunks: AsyncIterable<Buffer>,
  compressor: Duplex,
  after: readonly [...Duplex[], Writable],
  opts: CompressThroughOptions = {},
): Promise<void> {
  const downstream = pipeline([compressor, ...after], opts.signal ? { signal: opts.signal } : {});
  await Promise.all([feed(chunks, compressor, opts.ring, downstream), downstream]);
}
