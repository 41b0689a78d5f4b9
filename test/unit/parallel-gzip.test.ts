// Parallel gzip: one valid member for every input shape, level and thread count; deterministic output;
// bounded memory under a slow reader; errors and destroy behave. Every test runs with both engines
// (zlib, and libdeflate when the addon has it; CI installs libdeflate0 so both run there).

import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createCompressor } from '../../src/codec/compression.js';
import { createParallelGzip, type DeflateEngine, MAX_OUTPUT_CHUNK } from '../../src/codec/parallel-gzip.js';
import { PIECE_MARK } from '../../src/codec/piece-mark.js';
import { nativeAddon } from '../../src/io/native.js';
import { noise, runStream } from '../support/streams.js';

const PIECE = 64 * 1024;
const ENGINES: DeflateEngine[] = nativeAddon()?.deflatePiece ? ['zlib', 'libdeflate'] : ['zlib'];

/** Text-like bytes: words drawn from a small vocabulary, so deflate finds real matches. */
function prose(length: number, seed: number): Buffer {
  const words = ['sparse', 'extent', 'volume', 'bundle', 'manifest', 'kernel', 'ramdisk', 'the', 'of', 'a'];
  const picks = noise(Math.ceil(length / 3), seed);
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < length; i++) {
    const word = `${words[picks[i % picks.length]! % words.length]!}${i % 17 === 0 ? '\n' : ' '}`;
    parts.push(word);
    size += word.length;
  }
  return Buffer.from(parts.join('')).subarray(0, length);
}

/** Several MiB of random, compressible and zero data, in uneven runs. */
function mixed(length: number): Buffer {
  const pieces: Buffer[] = [];
  let size = 0;
  for (let i = 0; size < length; i++) {
    const run = 40_000 + ((i * 7919) % 300_000);
    const kind = i % 3;
    pieces.push(kind === 0 ? noise(run, i + 1) : kind === 1 ? prose(run, i + 1) : Buffer.alloc(run));
    size += run;
  }
  return Buffer.concat(pieces).subarray(0, length);
}

/** Splits `data` into chunks of varying sizes, like a real upstream. */
function chunked(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

async function gzipWith(
  input: Buffer[],
  opts: { level: number; threads: number; pieceSize?: number; engine: DeflateEngine },
): Promise<{ output: Buffer; chunkSizes: number[] }> {
  return runStream(createParallelGzip(opts), input);
}

/** Walks the member by hand: header, deflate body up to its end, trailer, then nothing. */
function checkSingleMember(gz: Buffer, input: Buffer, level: number): void {
  expect(gz.subarray(0, 4)).toEqual(Buffer.from([0x1f, 0x8b, 0x08, 0x00]));
  expect(gz.readUInt32LE(4)).toBe(0);
  expect(gz[8]).toBe(level === 9 ? 2 : level === 1 ? 4 : 0);
  expect(gz[9]).toBe(3);
  const { buffer, engine } = zlib.inflateRawSync(gz.subarray(10), { info: true }) as unknown as {
    buffer: Buffer;
    engine: zlib.InflateRaw;
  };
  expect(buffer.equals(input)).toBe(true);
  const trailerAt = 10 + engine.bytesWritten;
  expect(gz.length).toBe(trailerAt + 8);
  expect(gz.readUInt32LE(trailerAt)).toBe(zlib.crc32(input));
  expect(gz.readUInt32LE(trailerAt + 4)).toBe(input.length % 2 ** 32);
  expect(zlib.gunzipSync(gz).equals(input)).toBe(true);
}

describe.each(ENGINES)('parallel gzip with %s', (engine) => {
  const big = mixed(3 * 1024 * 1024 + 12345);
  const inputs: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([0x5a])],
    ['one piece', big.subarray(0, PIECE)],
    ['piece - 1', big.subarray(0, PIECE - 1)],
    ['piece + 1', big.subarray(0, PIECE + 1)],
    ['two pieces exactly', big.subarray(0, 2 * PIECE)],
    ['3 MiB mixed', big],
  ];

  for (const level of [1, 6, 9]) {
    it(`gives one valid member for every input shape at level ${level}, identical for 1 and 4 threads`, async () => {
      for (const [name, input] of inputs) {
        const one = await gzipWith(chunked(input, [70_000, 1, 5000, 200_000]), {
          level,
          threads: 1,
          pieceSize: PIECE,
          engine,
        });
        const four = await gzipWith(chunked(input, [PIECE, 333, 1 << 20]), {
          level,
          threads: 4,
          pieceSize: PIECE,
          engine,
        });
        checkSingleMember(one.output, input, level);
        expect(four.output.equals(one.output), `${name}: 4 threads differ from 1`).toBe(true);
        for (const size of [...one.chunkSizes, ...four.chunkSizes])
          expect(size).toBeLessThanOrEqual(MAX_OUTPUT_CHUNK);
      }
    });
  }

  it('ends an empty input with a single empty final block', async () => {
    const { output } = await gzipWith([], { level: 6, threads: 2, engine });
    checkSingleMember(output, Buffer.alloc(0), 6);
    // zlib: a fixed-Huffman block holding only end-of-block; libdeflate: an empty stored block.
    const body = output.subarray(10, -8).toString('hex');
    expect(body).toBe(engine === 'zlib' ? '0300' : '010000ffff');
  });

  it('ends every piece but the last with the piece mark (libdeflate only)', async () => {
    const input = mixed(5 * PIECE + 1000);
    const { output } = await gzipWith([input], { level: 6, threads: 2, pieceSize: PIECE, engine });
    const marker = PIECE_MARK;
    let count = 0;
    for (let at = output.indexOf(marker); at >= 0; at = output.indexOf(marker, at + 1)) count++;
    expect(count).toBe(engine === 'libdeflate' ? 5 : 0);
  });

  it('works with the default 1 MiB piece across piece boundaries', async () => {
    const input = big.subarray(0, 2.5 * 1024 * 1024);
    const { output } = await gzipWith(chunked(input, [100_000]), { level: 6, threads: 2, engine });
    checkSingleMember(output, input, 6);
  });

  it('stays within 1% of a single stream of the same engine at level 9 on compressible data', async () => {
    // zlib: 256 KiB pieces, more seams than the default, so the per-piece cost shows more.
    // libdeflate starts each piece without a dictionary, so it is held to the default 1 MiB pieces.
    const input = prose(4 * 1024 * 1024, 42);
    const { output } = await gzipWith(chunked(input, [1 << 16]), {
      level: 9,
      threads: 2,
      ...(engine === 'zlib' ? { pieceSize: 256 * 1024 } : {}),
      engine,
    });
    const single =
      engine === 'zlib'
        ? zlib.gzipSync(input, { level: 9 }).length
        : (await nativeAddon()!.deflatePiece!(input, 9, true)).length + 18;
    expect(output.length).toBeLessThanOrEqual(single * 1.01);
    expect(zlib.gunzipSync(output).equals(input)).toBe(true);
  });

  it('is reached through createCompressor and validates levels', () => {
    expect(createCompressor({ codec: 'gzip', level: 6, threads: 2 })).toBeInstanceOf(Readable);
    for (const level of [0, 10, 2.5, Number.NaN]) {
      expect(() => createCompressor({ codec: 'gzip', level, threads: 2 })).toThrow(RangeError);
    }
    expect(() => createCompressor({ codec: 'gzip', level: 10, threads: 2 })).toThrow(/gzip.*1 to 9/);
    expect(() => createParallelGzip({ level: 6, threads: 0 })).toThrow(RangeError);
    expect(() => createParallelGzip({ level: 6, threads: 1, pieceSize: 1000 })).toThrow(RangeError);
  });

  it('keeps its internal buffer bounded under a slow reader and honours back-pressure', async () => {
    const pieceSize = 128 * 1024;
    const total = 24 * 1024 * 1024;
    const gz = createParallelGzip({ level: 1, threads: 2, pieceSize, engine });
    let produced = 0;
    let sourcePaused = 0;
    const source = new Readable({
      highWaterMark: 256 * 1024,
      read() {
        // Noise does not compress, so the output is as large as the input and must be held back.
        const n = Math.min(256 * 1024, total - produced);
        if (n === 0) {
          this.push(null);
          return;
        }
        produced += n;
        if (!this.push(randomBytes(n))) sourcePaused++;
      },
    });
    let maxInside = 0;
    let maxAhead = 0;
    let received = 0;
    const parts: Buffer[] = [];
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, callback) {
        received += chunk.length;
        maxInside = Math.max(maxInside, gz.bufferedBytes + gz.readableLength + gz.writableLength);
        maxAhead = Math.max(maxAhead, produced - received);
        parts.push(chunk);
        if (parts.length % 8 === 0) setTimeout(callback, 1);
        else setImmediate(callback);
      },
    });
    await pipeline(source, gz, slow);
    const output = Buffer.concat(parts);
    expect(zlib.gunzipSync(output).length).toBe(total);
    // Fill piece + in-flight pieces (at most twice the limit dispatched) + one piece of ready output
    // + Node's own 64 KiB buffers on either side. Noise is stored, not compressed, so a piece's
    // output is its input plus stored-block headers (5 bytes per 64 KiB) and the piece mark: a
    // few dozen bytes per piece, not a piece more (seen: 75 bytes over a bound without it).
    const pieceOut = pieceSize + 5 * Math.ceil(pieceSize / 65535) + 64;
    const bound = (2 * gz.inFlightLimit + 3) * pieceOut + 2 * MAX_OUTPUT_CHUNK;
    expect(maxInside).toBeLessThanOrEqual(bound);
    expect(maxAhead).toBeLessThan(bound + 2 * 256 * 1024);
    expect(sourcePaused).toBeGreaterThan(0);
  });

  it('propagates an upstream error', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('disk on fire'));
      },
    });
    await expect(
      pipeline(
        failing,
        createParallelGzip({ level: 6, threads: 2, engine }),
        new Writable({ write: (_c, _e, cb) => cb() }),
      ),
    ).rejects.toThrow('disk on fire');
  });

  it('stops cleanly when destroyed while pieces are being compressed', async () => {
    const gz = createParallelGzip({ level: 9, threads: 2, pieceSize: PIECE, engine });
    const seen: Buffer[] = [];
    gz.on('data', (chunk: Buffer) => seen.push(chunk));
    for (let i = 0; i < 8; i++) gz.write(prose(PIECE, i + 1));
    const closed = new Promise<void>((resolve) => gz.on('close', resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const before = seen.length;
    gz.destroy();
    await closed;
    // Let the threadpool finish the pieces it had: their results must be dropped.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen.length).toBe(before);
    expect(gz.bufferedBytes).toBe(0);
  });
});
