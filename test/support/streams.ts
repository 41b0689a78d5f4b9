// Small helpers the codec tests share: deterministic data, chunking, and running a transform.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Deterministic incompressible bytes: xorshift32 noise. */
export function noise(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** `data` cut into pieces of `size` bytes (the last may be shorter). */
export function split(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) out.push(data.subarray(at, at + size));
  return out;
}

/** Feeds `input` through `stream`; the output, and the size of each piece as it was pushed. */
export async function runStream(
  stream: NodeJS.ReadWriteStream,
  input: Buffer[],
): Promise<{ output: Buffer; chunkSizes: number[] }> {
  const parts: Buffer[] = [];
  // A Writable sees each pushed piece as it is (an async iterator would join them).
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      callback();
    },
  });
  await pipeline(Readable.from(input), stream, sink);
  return { output: Buffer.concat(parts), chunkSizes: parts.map((p) => p.length) };
}
