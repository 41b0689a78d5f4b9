// zstd codec: round trips at several levels and worker counts, one checksummed frame, 64 KiB output
// pieces, clear errors for damaged input, checksums compared unless the caller checks a digest,
// and bounded output when a tiny frame expands hugely.

import { Readable, Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createCompressor, createDecompressor } from '../../src/codec/compression.js';
import { createZstdCompressor, createZstdDecompressor } from '../../src/codec/zstd.js';
import { noise, runStream, split } from '../support/streams.js';
import { ZSTD_OUTPUT_CHUNK, ZSTD_OUTPUT_CREDITS } from '../../src/codec/zstd-decompress.js';

function sample(length: number): Buffer {
  const text = Buffer.from('instance-store AMI bundle part manifest signature '.repeat(2000));
  const pieces: Buffer[] = [];
  let size = 0;
  for (let i = 0; size < length; i++) {
    const piece = i % 3 === 0 ? noise(100_000, i + 1) : i % 3 === 1 ? text : Buffer.alloc(150_000);
    pieces.push(piece);
    size += piece.length;
  }
  return Buffer.concat(pieces).subarray(0, length);
}

describe('zstd codec', () => {
  const big = sample(3 * 1024 * 1024 + 777);
  const inputs: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from('x')],
    ['3 MiB mixed', big],
  ];

  for (const [level, threads] of [
    [1, 1],
    [3, 2],
    [19, 2],
  ] as const) {
    it(`round-trips at level ${level} with ${threads} worker(s)`, async () => {
      for (const [name, input] of inputs) {
        const data = level === 19 ? input.subarray(0, 256 * 1024) : input;
        const packed = await runStream(createZstdCompressor({ level, threads }), split(data, 100_000));
        for (const size of packed.chunkSizes) expect(size).toBeLessThanOrEqual(64 * 1024);
        // Magic number, then a frame header descriptor with the content-checksum bit set.
        expect(packed.output.readUInt32LE(0)).toBe(0xfd2fb528);
        expect(packed.output[4]! & 0x04).toBe(0x04);
        const unpacked = await runStream(createZstdDecompressor(), split(packed.output, 4099));
        expect(unpacked.output.equals(data), name).toBe(true);
      }
    });
  }

  it('compresses identically whatever the number of workers (at least one)', async () => {
    const a = await runStream(createZstdCompressor({ level: 3, threads: 1 }), split(big, 65536));
    const b = await runStream(createZstdCompressor({ level: 3, threads: 4 }), split(big, 300_000));
    expect(a.output.equals(b.output)).toBe(true);
  });

  it('is reached through createCompressor/createDecompressor and validates levels', async () => {
    const packed = await runStream(createCompressor({ codec: 'zstd', level: 5, threads: 2 }), [big]);
    const unpacked = await runStream(createDecompressor('zstd'), [packed.output]);
    expect(unpacked.output.equals(big)).toBe(true);
    for (const level of [0, 20, 22, -1, 3.5]) {
      expect(() => createCompressor({ codec: 'zstd', level, threads: 2 })).toThrow(RangeError);
    }
    expect(() => createCompressor({ codec: 'zstd', level: 20, threads: 2 })).toThrow(/zstd.*1 to 19/);
    expect(() => createCompressor({ codec: 'lz4' as 'zstd', level: 1, threads: 2 })).toThrow(
      /unknown compression codec/,
    );
  });

  it('rejects truncated, corrupted, empty and non-zstd input with a clear error', async () => {
    const packed = (await runStream(createZstdCompressor({ level: 3, threads: 1 }), [big])).output;
    await expect(
      runStream(createZstdDecompressor(), [packed.subarray(0, packed.length - 10)]),
    ).rejects.toThrow(/zstd data is truncated/);
    const corrupt = Buffer.from(packed);
    corrupt[Math.floor(corrupt.length / 2)]! ^= 0xff;
    await expect(runStream(createZstdDecompressor(), [corrupt])).rejects.toThrow(/zstd data is corrupt/);
    await expect(runStream(createZstdDecompressor(), [])).rejects.toThrow(/zstd data is empty/);
    await expect(runStream(createZstdDecompressor(), [Buffer.from('definitely not zstd')])).rejects.toThrow(
      /zstd data is corrupt/,
    );
    await expect(runStream(createZstdDecompressor(), [packed, Buffer.from('garbage!')])).rejects.toThrow(
      /zstd data is corrupt/,
    );
  });

  it('compares frame checksums unless told the output digest is checked (then a wrong one is ignored)', async () => {
    const packed = (await runStream(createZstdCompressor({ level: 3, threads: 1 }), [big])).output;
    // The frame ends with the low 32 bits of XXH64 of its content.
    const badSum = Buffer.from(packed);
    badSum[badSum.length - 1]! ^= 0x01;
    await expect(runStream(createZstdDecompressor(), [badSum])).rejects.toThrow(/zstd data is corrupt/);
    await expect(runStream(createDecompressor('zstd'), [badSum])).rejects.toThrow(/zstd data is corrupt/);
    const ignored = await runStream(createDecompressor('zstd', { outputDigestChecked: true }), [badSum]);
    expect(ignored.output.equals(big)).toBe(true);
    // Skipping the comparison still reads the field: a frame cut inside it is truncated.
    await expect(
      runStream(createZstdDecompressor({ checkContentChecksum: false }), [
        packed.subarray(0, packed.length - 2),
      ]),
    ).rejects.toThrow(/zstd data is truncated/);
  });

  it('the worker reports its end once, however many credits and buffers come back after it', async () => {
    // Each message the worker handles after its input ran out used to report the end again, and
    // each report terminated the worker once more: past ten, Node printed a listener-leak warning
    // on every large zstd restore.
    const data = Buffer.concat([noise(8 * 1024 * 1024, 7), Buffer.alloc(40 * 1024 * 1024)]);
    const packed = (await runStream(createZstdCompressor({ level: 1, threads: 1 }), [data])).output;
    const d = createZstdDecompressor();
    let ends = 0;
    // White box: the worker's own messages, seen beside the stream's handler.
    (d as unknown as { worker: Worker }).worker.on('message', (m: { type: string }) => {
      if (m.type === 'end') ends++;
    });
    let seen = 0;
    // A reader that gives each buffer back at once, as a restore does.
    const reader = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _e, cb) {
        seen += chunk.length;
        d.release(chunk);
        cb();
      },
    });
    await pipeline(Readable.from([packed]), d, reader);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(seen).toBe(data.length);
    expect(ends).toBe(1);
  });

  it('hands out a hugely expanding frame in bounded pieces as the reader asks', async () => {
    const zeros = Buffer.alloc(8 * 1024 * 1024);
    const packed = (
      await runStream(createZstdCompressor({ level: 3, threads: 1 }), [zeros, zeros, zeros, zeros])
    ).output;
    expect(packed.length).toBeLessThan(64 * 1024);
    const decompressor = createZstdDecompressor();
    let maxBuffered = 0;
    let total = 0;
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        total += chunk.length;
        maxBuffered = Math.max(maxBuffered, decompressor.readableLength);
        setImmediate(callback);
      },
    });
    // The whole frame arrives in one write: only the reader's pace may limit what is inflated.
    await pipeline(Readable.from([packed]), decompressor, slow);
    expect(total).toBe(32 * 1024 * 1024);
    // The worker holds at most its credits' worth of output buffers out at once.
    expect(maxBuffered).toBeLessThanOrEqual((ZSTD_OUTPUT_CREDITS + 1) * ZSTD_OUTPUT_CHUNK);
  });
});
