// How the tar stream is driven into the compressor and on through the stages after it. One home,
// so that `amibundle bench`'s compress stage measures the compressor driven exactly as
// bundle-image drives it (same writes, same back-pressure, same buffer reuse) and not by a stream
// helper of its own: the bench's figure is only worth what the driving it shares is.
import { once } from 'node:events';
import type { Duplex, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BufferRing } from './buffer-ring.js';

/** Read buffers in flight between the image and the compressor (the size of bundle-image's ring). */
export const READ_BUFFERS = 8;

/**
 * Writes `chunks` into `into` with back-pressure, handing each read buffer back to `ring` once
 * `into` has consumed it (views of memory the ring does not own are left alone). Waits for 'drain'
 * only when the stream asks for it. Stops (and fails) when `downstream`, the pipeline `into` heads,
 * does.
 */
export async function feed(
  chunks: AsyncIterable<Buffer>,
  into: Writable,
  ring: BufferRing | undefined,
  downstream: Promise<void>,
): Promise<void> {
  const failed = downstream.then(
    () => new Promise<never>(() => undefined),
    (err: unknown) => Promise.reject(err instanceof Error ? err : new Error(String(err))),
  );
  try {
    for await (const chunk of chunks) {
      const consumed = new Promise<void>((resolve, reject) =>
        into.write(chunk, (err) => (err ? reject(err) : resolve())),
      );
      consumed.catch(() => undefined); // the pipeline reports the error
      ring?.release(chunk, consumed);
      if (into.writableNeedDrain) await Promise.race([once(into, 'drain'), failed]);
    }
    into.end();
  } catch (err) {
    into.destroy(err instanceof Error ? err : new Error(String(err)));
    await downstream.catch(() => undefined);
    throw err;
  }
}

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
