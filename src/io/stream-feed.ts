// Writing an async sequence of chunks into the head of a stream pipeline, the one way both ends of
// a bundle do it: bundle-image feeds the tar stream into the compressor, the restore feeds the
// decrypted parts into the decompressor. Back-pressure is honoured, each chunk's memory goes back
// to its owner once the stream has consumed it, and a failure on either side stops both.
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** Who gets a chunk's memory back once the stream has consumed it (used it or copied it). */
export interface ChunkReleaser {
  release(chunk: Buffer, consumed: Promise<unknown>): void;
}

/**
 * Writes `chunks` into `into` with back-pressure, telling `releaser` when each was consumed (a
 * write's callback runs once the stream has finished with that chunk). Waits for 'drain' only when
 * the stream asks for it. Stops (and fails) when `downstream`, the pipeline `into` heads, does; an
 * error from `chunks` destroys `into`.
 */
export async function feed(
  chunks: AsyncIterable<Buffer>,
  into: Writable,
  releaser: ChunkReleaser | undefined,
  downstream: Promise<void>,
): Promise<void> {
  const failed = downstream.then(
    () => new Promise<never>(() => undefined),
    (err: unknown) => Promise.reject(err instanceof Error ? err : new Error(String(err))),
  );
  failed.catch(() => undefined); // the pipeline reports it
  try {
    for await (const chunk of chunks) {
      // Destroyed (aborted, or failed downstream): the pipeline carries the error; read no more.
      if (into.destroyed) return;
      const consumed = new Promise<void>((resolve, reject) =>
        into.write(chunk, (err) => (err ? reject(err) : resolve())),
      );
      consumed.catch(() => undefined); // the pipeline reports the error
      releaser?.release(chunk, consumed);
      if (into.writableNeedDrain) await Promise.race([once(into, 'drain'), failed]);
    }
    into.end();
  } catch (err) {
    into.destroy(err instanceof Error ? err : new Error(String(err)));
    await downstream.catch(() => undefined);
    throw err;
  }
}
