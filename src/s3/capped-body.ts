// Reading a GetObject body into memory with a ceiling. A Content-Length check alone is not
// enough: a server (or anything between) may send a chunked body with no length, and the SDK's
// transformToByteArray would buffer all of it. Here the bytes are counted as they arrive and
// the stream is destroyed the moment the count passes the cap.
import { BundleError } from '../errors.js';

interface DestroyableBody {
  destroy?: (err?: Error) => void;
  transformToByteArray?: () => Promise<Uint8Array>;
}

/**
 * The whole body, at most `maxBytes`; more is refused with an error naming `what` (the key and
 * bucket) after reading at most one chunk past the cap.
 */
export async function readCapped(body: unknown, maxBytes: number, what: string): Promise<Buffer> {
  const tooLarge = (): BundleError =>
    new BundleError(`${what} is larger than ${maxBytes} bytes: too large for a bundle part or manifest`);
  const b = body as DestroyableBody & Partial<AsyncIterable<Uint8Array>>;
  if (typeof b[Symbol.asyncIterator] !== 'function') {
    // Not a stream (a browser-like body): read it, then check; the Content-Length check applied.
    const bytes = Buffer.from(await b.transformToByteArray!());
    if (bytes.length > maxBytes) throw tooLarge();
    return bytes;
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of b as AsyncIterable<Uint8Array>) {
      total += chunk.length;
      if (total > maxBytes) throw tooLarge();
      chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    }
  } catch (err) {
    b.destroy?.();
    throw err;
  }
  return Buffer.concat(chunks, total);
}
