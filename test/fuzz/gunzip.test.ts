// Property tests of both gzip readers (sequential and parallel): on valid streams from gzip, zlib
// and our parallel writer they give exactly the input back; on mutated streams and random bytes
// they end in a BundleError, or in output that zlib's own gunzip agrees with byte for byte.
import { spawnSync } from 'node:child_process';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canInflateInParallel, ParallelGunzip } from '../../src/codec/parallel-gunzip.js';
import { createParallelGzip } from '../../src/codec/parallel-gzip.js';
import { SingleMemberGunzip } from '../../src/codec/single-member-gunzip.js';
import { noise, runStream, split } from '../support/streams.js';
import {
  chunking,
  fixtureGzip,
  labelled,
  mutated,
  outcome,
  params,
  pieces,
  randomBytes,
  runs,
  sandbox,
  smallCases,
  timeoutFor,
} from './fuzz-support.js';

let box: { done: () => void };
beforeAll(() => {
  box = sandbox('gunzip');
});
afterAll(() => box.done());

type Reader = 'sequential' | 'parallel';
const readers: Reader[] = canInflateInParallel() ? ['sequential', 'parallel'] : ['sequential'];

/** `gz` through one of our readers, cut into `size`-byte chunks. */
async function gunzip(which: Reader, gz: Buffer, size: number): Promise<Buffer> {
  const reader = which === 'parallel' ? new ParallelGunzip() : new SingleMemberGunzip();
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(pieces(gz, size)),
    reader,
    new Writable({
      write(c: Buffer, _e, cb) {
        out.push(Buffer.from(c));
        if (reader instanceof ParallelGunzip) reader.release(c);
        cb();
      },
    }),
  );
  return Buffer.concat(out);
}

/** zlib's reading of `gz`, or undefined when it refuses. */
function zlibGunzip(gz: Buffer): Buffer | undefined {
  try {
    return zlib.gunzipSync(gz);
  } catch {
    return undefined;
  }
}

/** Data worth compressing: runs of text, zeros and noise. */
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
  const engine = createParallelGzip({ level, threads: 2, pieceSize: 64 * 1024 });
  return (await runStream(engine, split(data, 100_000))).output;
}

function gzipTool(data: Buffer, level: number): Buffer {
  const r = spawnSync('gzip', [`-${level}`, '-c', '-n'], { input: data, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`gzip failed: ${r.stderr.toString()}`);
  return r.stdout;
}

describe.each(readers)('%s gunzip', (which) => {
  const n = runs(20);
  it(
    'valid streams (gzip, zlib, our parallel gzip) read back exactly',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          plain,
          fc.integer({ min: 1, max: 9 }),
          fc.constantFrom('gzip', 'zlib', 'ours'),
          chunking,
          async (data, level, writer, size) => {
            const gz =
              writer === 'gzip'
                ? gzipTool(data, level)
                : writer === 'zlib'
                  ? zlib.gzipSync(data, { level })
                  : await ours(data, level);
            const r = await outcome('gunzip', () => gunzip(which, gz, Math.max(size, 64)));
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
    ...smallCases().map((c): [string, () => Buffer] => [`fixture ${c.case}`, () => fixtureGzip(c)]),
    ['our parallel gzip', () => ours(noise(150_000, 7).fill(0, 40_000, 90_000), 6)],
  ];
  for (const [label, seed] of seeds) {
    const m = runs(25);
    it(
      `mutated ${label}: a BundleError, or what zlib reads`,
      async () => {
        const gz = await seed();
        await fc.assert(
          fc.asyncProperty(mutated(gz), chunking, async (input, size) => {
            const r = await outcome('gunzip', () => gunzip(which, input, size));
            if (r.ok) expect(r.value.equals(zlibGunzip(input) ?? Buffer.from('zlib refused it'))).toBe(true);
          }),
          params(m),
        );
      },
      timeoutFor(m),
    );
  }

  const r = runs(100);
  it(
    'random bytes, with and without a gzip magic',
    async () => {
      await fc.assert(
        fc.asyncProperty(randomBytes(2048), fc.boolean(), chunking, async (bytes, magic, size) => {
          const input = magic ? labelled(Buffer.concat([Buffer.from([0x1f, 0x8b, 8]), bytes])) : bytes;
          const res = await outcome('gunzip', () => gunzip(which, input, size));
          if (res.ok)
            expect(res.value.equals(zlibGunzip(input) ?? Buffer.from('zlib refused it'))).toBe(true);
        }),
        params(r),
      );
    },
    timeoutFor(r),
  );
});
