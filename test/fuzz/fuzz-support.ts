// What the property tests share: how many runs (a few in `npm test`, FUZZ_RUNS in `npm run fuzz`),
// a per-input time bound, the rule that every failure is a typed error, a sandbox folder as the
// working directory, mutations of valid inputs, and the golden fixtures' own streams as seeds.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { expect } from 'vitest';
import { BundleError } from '../../src/errors.js';
import { bundledCases, tempDir, type FixtureCase } from '../support/fixtures.js';

/** Runs per property: `fallback` in the ordinary suite, FUZZ_RUNS when set (npm run fuzz). */
export function runs(fallback: number): number {
  const n = Number(process.env['FUZZ_RUNS']);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/** Longest any single input may take: a bound on work, far above what a valid input needs. */
export const DEADLINE_MS = 2000;

/** Test timeout for a property of `n` runs: each run within the deadline, plus setup. */
export function timeoutFor(n: number): number {
  return n * DEADLINE_MS + 60_000;
}

/** fast-check parameters; FUZZ_SEED replays a reported failure. */
export function params(fallback: number): fc.Parameters<unknown> {
  const seed = Number(process.env['FUZZ_SEED']);
  return { numRuns: runs(fallback), ...(Number.isInteger(seed) ? { seed } : {}) };
}

/**
 * Runs `work` for one input and fails if it takes longer than DEADLINE_MS: asynchronous work is cut
 * off at the deadline, synchronous work is measured when it returns (a hang is caught by the test
 * timeout).
 */
export async function bounded<T>(
  what: string,
  work: () => Promise<T> | T,
  deadlineMs = DEADLINE_MS,
): Promise<T> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: one input took over ${deadlineMs} ms`)), deadlineMs);
  });
  const overtime = (): void => {
    const took = performance.now() - started;
    if (took > deadlineMs) throw new Error(`${what}: one input took ${Math.round(took)} ms`);
  };
  try {
    const value = await Promise.race([Promise.resolve().then(work), deadline]);
    overtime();
    return value;
  } catch (error) {
    overtime();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: BundleError };

/**
 * The outcome of `work` on one input, within the deadline; any failure that is not a BundleError
 * (a TypeError, a RangeError, a raw zlib error, the deadline) fails the property.
 */
export async function outcome<T>(
  what: string,
  work: () => Promise<T> | T,
  deadlineMs = DEADLINE_MS,
): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await bounded(what, work, deadlineMs) };
  } catch (error) {
    if (error instanceof BundleError) {
      // Messages may quote untrusted text; escaping it for the terminal is the printer's job.
      expect(error.message.length).toBeGreaterThan(0);
      return { ok: false, error };
    }
    throw error;
  }
}

/**
 * The sandbox: a fresh temporary folder made the working directory for the file's tests, so a
 * reader that wrote anything by a relative path would write there, and `done()` checks it stayed
 * empty before removing it.
 */
export function sandbox(label: string): { dir: string; done: () => void } {
  const t = tempDir(`fuzz-${label}`);
  const previous = process.cwd();
  process.chdir(t.dir);
  return {
    dir: t.dir,
    done: () => {
      process.chdir(previous);
      const left = fs.readdirSync(t.dir);
      t.remove();
      expect(left).toEqual([]);
    },
  };
}

/** One edit of a byte string, as fast-check generates it (positions are taken modulo the length). */
type Edit =
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; bytes: Uint8Array };

/** Positions: mostly near the start (headers live there), sometimes anywhere. */
const position = fc.oneof(
  { weight: 3, arbitrary: fc.nat({ max: 4095 }) },
  { weight: 1, arbitrary: fc.nat() },
);

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: position, byte: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: position,
    bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  }),
  fc.record({
    kind: fc.constant('delete' as const),
    at: position,
    length: fc.integer({ min: 1, max: 1024 }),
  }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: position,
    length: fc.integer({ min: 1, max: 2048 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 600 }) }),
);

function apply(data: Buffer, e: Edit): Buffer {
  const n = data.length;
  const at = 'at' in e ? (n === 0 ? 0 : e.at % n) : 0;
  switch (e.kind) {
    case 'set':
      if (n === 0) return data;
      return Buffer.concat([data.subarray(0, at), Buffer.from([e.byte]), data.subarray(at + 1)]);
    case 'flip': {
      if (n === 0) return data;
      const out = Buffer.from(data);
      out[at] = out[at]! ^ (1 << e.bit);
      return out;
    }
    case 'insert':
      return Buffer.concat([data.subarray(0, at), Buffer.from(e.bytes), data.subarray(at)]);
    case 'delete':
      return Buffer.concat([data.subarray(0, at), data.subarray(at + e.length)]);
    case 'duplicate':
      return Buffer.concat([data.subarray(0, at + e.length), data.subarray(at)]);
    case 'truncate':
      return data.subarray(0, n === 0 ? 0 : e.at % (n + 1));
    case 'append':
      return Buffer.concat([data, Buffer.from(e.bytes)]);
  }
}

/** Shows `buf` in a counterexample by its size, digest and `how` it was made, not byte by byte. */
export function labelled(buf: Buffer, how = ''): Buffer {
  const digest = crypto.createHash('sha1').update(buf).digest('hex');
  Object.defineProperty(buf, fc.toStringMethod, {
    value: () => `<${buf.length} bytes, sha1 ${digest}${how ? `, ${how}` : ''}>`,
  });
  return buf;
}

/** `seed` with one to four random edits (a counterexample prints the edits). */
export function mutated(seed: Buffer): fc.Arbitrary<Buffer> {
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) =>
    labelled(
      edits.reduce(apply, seed),
      JSON.stringify(edits, (_k, v: unknown) =>
        v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
      ),
    ),
  );
}

/** Random bytes, printed by size and digest in a counterexample. */
export function randomBytes(maxLength: number): fc.Arbitrary<Buffer> {
  return fc
    .uint8Array({ maxLength })
    .map((b) => labelled(Buffer.from(b), Buffer.from(b).toString('hex').slice(0, 200)));
}

/** Chunk sizes to cut a stream into: tiny to large, so every unit boundary is crossed somewhere. */
export const chunking = fc.oneof(
  fc.integer({ min: 1, max: 17 }),
  fc.integer({ min: 500, max: 530 }),
  fc.integer({ min: 4000, max: 70_000 }),
);

/**
 * `data` cut into `size`-byte pieces, at most 2000 of them: each write costs the streams a fixed
 * overhead (a zlib call on the threadpool), which is not what is under test.
 */
export function pieces(data: Buffer, requested: number): Buffer[] {
  const size = Math.max(requested, Math.ceil(data.length / 2000));
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) out.push(data.subarray(at, at + size));
  return out;
}

/** A fixture bundle's compressed stream (the parts decrypted) as ec2-ami-tools wrote it. */
export function fixtureGzip(c: FixtureCase): Buffer {
  const e = c.expected!;
  const encrypted = Buffer.concat(e.parts.map((p) => fs.readFileSync(path.join(c.dir, 'bundle', p.file))));
  const d = crypto.createDecipheriv(
    'aes-128-cbc',
    Buffer.from(e.key_material.key_ascii_hex, 'hex'),
    Buffer.from(e.key_material.iv_ascii_hex, 'hex'),
  );
  return Buffer.concat([d.update(encrypted), d.final()]);
}

/** Fixture cases whose tar stream is small enough to mutate many times (under 1 MiB). */
export function smallCases(): FixtureCase[] {
  return bundledCases().filter((c) => c.expected!.tar.size < 1024 * 1024);
}

/** A fixture bundle's tar stream (checked against the fixture's SHA-1). */
export function fixtureTar(c: FixtureCase): Buffer {
  const tar = zlib.gunzipSync(fixtureGzip(c));
  expect(crypto.createHash('sha1').update(tar).digest('hex')).toBe(c.expected!.tar.sha1);
  return tar;
}
