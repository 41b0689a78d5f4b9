// Property tests of the zstd reader: streams from the zstd tool and from our compressor read back
// exactly; mutated streams and random bytes end in a BundleError, or in output the zstd tool
// itself decompresses from the same input byte for byte.
import { spawnSync } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createZstdCompressor } from '../../src/codec/zstd.js';
import { ZstdDecompressor } from '../../src/codec/zstd-decompress.js';
import { noise, runStream, split } from '../support/streams.js';
import {
  chunking,
  labelled,
  mutated,
  outcome,
  params,
  pieces,
  randomBytes,
  runs,
  sandbox,
  timeoutFor,
} from './fuzz-support.js';

let box: { done: () => void };
beforeAll(() => {
  box = sandbox('zstd');
});
afterAll(() => box.done());

async function unzstd(zst: Buffer, size: number): Promise<Buffer> {
  const reader = new ZstdDecompressor();
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(pieces(zst, size)),
    reader,
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(Buffer.from(c));
        reader.release(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

/** The zstd tool's reading of `zst`, or undefined when it refuses. */
function zstdTool(args: string[], input: Buffer): Buffer | undefined {
  const r = spawnSync('zstd', [...args, '-c', '-q'], { input, maxBuffer: 1 << 28 });
  return r.status === 0 ? r.stdout : undefined;
}

const plain = fc
  .array(
    fc.oneof(
      fc.integer({ min: 1, max: 40_000 }).map((n) => Buffer.alloc(n)),
      fc.tuple(fc.integer({ min: 1, max: 30_000 }), fc.nat()).map(([n, s]) => noise(n, s + 1)),
      fc
        .tuple(fc.string({ maxLength: 40 }), fc.integer({ min: 1, max: 2000 }))
        .map(([t, n]) => Buffer.from(t.repeat(n))),
    ),
    { maxLength: 8 },
  )
  .map((parts) => labelled(Buffer.concat(parts)));

async function ours(data: Buffer, level: number): Promise<Buffer> {
  return (await runStream(createZstdCompressor({ level, threads: 1 }), split(data, 100_000))).output;
}

describe('zstd reader', () => {
  const n = runs(12);
  it(
    'valid streams (the zstd tool, our compressor) read back exactly',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          plain,
          fc.integer({ min: 1, max: 12 }),
          fc.boolean(),
          chunking,
          async (data, level, tool, size) => {
            const zst = tool ? zstdTool([`-${level}`], data)! : await ours(data, level);
            const r = await outcome('zstd', () => unzstd(zst, size));
            expect(r.ok).toBe(true);
            if (r.ok) expect(r.value.equals(data)).toBe(true);
          },
        ),
        params(n),
      );
    },
    timeoutFor(n),
  );

  const seeds: [string, () => Promise<Buffer> | Buffer][] = [
    ['the zstd tool', () => zstdTool(['-3'], noise(80_000, 3).fill(0, 10_000, 50_000))!],
    ['our compressor', () => ours(Buffer.from('sector '.repeat(20_000)), 3)],
  ];
  for (const [label, seed] of seeds) {
    const m = runs(20);
    it(
      `mutated streams of ${label}: a BundleError, or what the zstd tool reads`,
      async () => {
        const zst = await seed();
        await fc.assert(
          fc.asyncProperty(mutated(zst), chunking, async (input, size) => {
            const r = await outcome('zstd', () => unzstd(input, size));
            if (r.ok)
              expect(r.value.equals(zstdTool(['-d'], input) ?? Buffer.from('zstd refused it'))).toBe(true);
          }),
          params(m),
        );
      },
      timeoutFor(m),
    );
  }

  const r = runs(20);
  it(
    'random bytes, with and without a zstd magic',
    async () => {
      await fc.assert(
        fc.asyncProperty(randomBytes(2048), fc.boolean(), chunking, async (bytes, magic, size) => {
          const input = magic
            ? labelled(Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), bytes]))
            : bytes;
          const res = await outcome('zstd', () => unzstd(input, size));
          if (res.ok)
            expect(res.value.equals(zstdTool(['-d'], input) ?? Buffer.from('zstd refused it'))).toBe(true);
        }),
        params(r),
      );
    },
    timeoutFor(r),
  );
});
