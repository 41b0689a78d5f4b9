// The readers of a gzip member without amibundle's block marks (what `gzip -9` and so every
// ec2-ami-tools bundle writes): ISA-L's streaming inflate when the addon has it, zlib otherwise.
// Each path is forced in turn (AMIBUNDLE_INFLATE, AMIBUNDLE_NO_NATIVE) and must give back exactly
// the bytes `gzip -9` was given, whatever the input chunking; damage is an error on each path.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createDecompressor } from '../../src/codec/compression.js';
import { canInflateWithIsal, IsalGunzip } from '../../src/codec/isal-gunzip.js';
import { ParallelGunzip } from '../../src/codec/parallel-gunzip.js';
import { SingleMemberGunzip } from '../../src/codec/single-member-gunzip.js';
import { BundleError } from '../../src/errors.js';
import { noise, runStream, split } from '../support/streams.js';

/** Text, noise and zeros in uneven runs: what a disk image holds. */
function mixed(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let at = 0;
  for (let i = 0; at < length; i++) {
    const h = crypto.createHash('sha256').update(`${seed}:${i}`).digest();
    const run = 10_000 + (h.readUInt32LE(0) % 300_000);
    const kind = h[4]! % 3;
    const piece =
      kind === 0
        ? noise(run, h.readUInt32LE(8))
        : kind === 1
          ? Buffer.from(`line ${i} of a file ${h.toString('hex')}\n`.repeat(run / 80 + 1))
          : Buffer.alloc(run);
    at += piece.copy(out, at);
  }
  return out;
}

function gzip9(data: Buffer): Buffer {
  const r = spawnSync('gzip', ['-9', '-c'], { input: data, maxBuffer: 256 * 1024 * 1024 });
  expect(r.status).toBe(0);
  return r.stdout;
}

const saved = { inflate: process.env['AMIBUNDLE_INFLATE'], native: process.env['AMIBUNDLE_NO_NATIVE'] };
afterEach(() => {
  for (const [k, v] of [
    ['AMIBUNDLE_INFLATE', saved.inflate],
    ['AMIBUNDLE_NO_NATIVE', saved.native],
  ] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const PATHS = [
  { name: 'default (parallel, handing over to igzip)', env: {}, expect: ParallelGunzip },
  { name: 'igzip forced', env: { AMIBUNDLE_INFLATE: 'isal' }, expect: IsalGunzip },
  { name: 'zlib forced', env: { AMIBUNDLE_INFLATE: 'zlib' }, expect: SingleMemberGunzip },
  { name: 'no addon', env: { AMIBUNDLE_NO_NATIVE: '1' }, expect: SingleMemberGunzip },
] as const;

const data = mixed(12 * 1024 * 1024 + 12345, 7);
const gz = gzip9(data);

describe('gzip -9 members on every reader path', () => {
  it('has ISA-L streaming here (the build machine has libisal2)', () => {
    expect(canInflateWithIsal()).toBe(true);
  });

  for (const path of PATHS) {
    it(`${path.name}: byte-equal output in any input chunking`, async () => {
      Object.assign(process.env, path.env);
      for (const size of [65536, 1_000_003, 4093]) {
        const reader = createDecompressor('gzip');
        expect(reader).toBeInstanceOf(path.expect);
        const { output } = await runStream(reader, split(gz, size));
        expect(output.equals(data), `chunks of ${size}`).toBe(true);
        // No marks: the parallel reader hands the whole member to igzip.
        if (reader instanceof ParallelGunzip) expect(reader.sequentialEngine).toBe('isal');
      }
    });

    it(`${path.name}: damage, truncation and trailing bytes are errors`, async () => {
      Object.assign(process.env, path.env);
      const flipped = Buffer.from(gz);
      flipped[Math.floor(gz.length / 2)]! ^= 0x55;
      const cases: [string, Buffer][] = [
        ['flipped byte', flipped],
        ['truncated', gz.subarray(0, gz.length - 3)],
        ['cut in the body', gz.subarray(0, gz.length >> 1)],
        ['trailing byte', Buffer.concat([gz, Buffer.from([0])])],
        ['second member', Buffer.concat([gz, gzip9(Buffer.from('x'))])],
      ];
      for (const [what, input] of cases) {
        await expect(runStream(createDecompressor('gzip'), split(input, 65536)), what).rejects.toThrow(
          BundleError,
        );
      }
    });
  }

  it('the igzip reader resumes inside a member with a dictionary, a CRC and a length', async () => {
    const first = data.subarray(0, 3 * 1024 * 1024);
    const second = data.subarray(first.length);
    const body = zlib.deflateRawSync(second, { level: 9, dictionary: first.subarray(-32768) });
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(zlib.crc32(data), 0);
    trailer.writeUInt32LE(data.length % 0x1_0000_0000, 4);
    const reader = new IsalGunzip({
      dictionary: Buffer.from(first.subarray(-32768)),
      crc: zlib.crc32(first),
      size: first.length,
    });
    const { output } = await runStream(reader, split(Buffer.concat([body, trailer]), 50_000));
    expect(output.equals(second)).toBe(true);
  });
});
