// The parallel gzip reader: it inflates our marked pieces concurrently, and for anything else (gzip -9,
// pigz, a stream whose "pieces" refer back across a mark) it hands over to the sequential reader and
// still gives exactly the same bytes; damage is an error either way. Real tools write the inputs.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createParallelGzip } from '../../src/codec/parallel-gzip.js';
import { canInflateInParallel, ParallelGunzip } from '../../src/codec/parallel-gunzip.js';
import { BundleError } from '../../src/errors.js';
import { runStream, split } from '../support/streams.js';

/** Several MiB of text, noise and zeros in uneven runs. */
function mixed(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let at = 0;
  for (let i = 0; at < length; i++) {
    const h = crypto.createHash('sha256').update(`${seed}:${i}`).digest();
    const run = 20_000 + (h.readUInt32LE(0) % 400_000);
    const kind = h[4]! % 3;
    const piece =
      kind === 0
        ? crypto.randomBytes(run)
        : kind === 1
          ? Buffer.from(`block ${i} of sector data ${h.toString('hex')}\n`.repeat(run / 90 + 1))
          : Buffer.alloc(run);
    at += piece.copy(out, at);
  }
  return out;
}

/** Reads `gz` through a ParallelGunzip; `release` gives each chunk back as soon as it is copied. */
async function gunzip(gz: Buffer, chunk = 65536, release = false): Promise<{ data: Buffer; mode: string }> {
  const reader = new ParallelGunzip();
  const parts: Buffer[] = [];
  await pipeline(
    Readable.from(split(gz, chunk)),
    reader,
    new Writable({
      write(c: Buffer, _e, cb) {
        parts.push(Buffer.from(c));
        if (release) reader.release(c);
        cb();
      },
    }),
  );
  return { data: Buffer.concat(parts), mode: reader.mode };
}

async function ours(input: Buffer, level = 6): Promise<Buffer> {
  const engine = createParallelGzip({ level, threads: 2, engine: 'libdeflate' });
  return (await runStream(engine, split(input, 100_000))).output;
}

function tool(cmd: string, args: string[], input: Buffer): Buffer {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr.toString()}`);
  return r.stdout;
}

describe.runIf(canInflateInParallel())('parallel gunzip', () => {
  const input = mixed(6 * 1024 * 1024 + 777, 1);

  it('reads our marked members in parallel, at every level and input chunking, pooled or not', async () => {
    for (const level of [1, 6, 9]) {
      const gz = await ours(input, level);
      for (const [chunk, release] of [
        [65536, true],
        [7, false],
        [1 << 22, true],
      ] as const) {
        const { data, mode } = await gunzip(gz, chunk, release);
        expect(mode).toBe('parallel');
        expect(data.equals(input), `level ${level}, chunk ${chunk}`).toBe(true);
      }
    }
  });

  it('hands gzip -9, pigz and Python gzip members to the sequential reader with the same result', async () => {
    // Over 4 MiB compressed with no mark (noise does not compress): the reader gives up on pieces.
    const input = Buffer.concat([mixed(3 * 1024 * 1024, 3), crypto.randomBytes(5 * 1024 * 1024)]);
    const written = [
      tool('gzip', ['-9', '-c'], input),
      tool('pigz', ['-6', '-p', '2', '-c'], input),
      tool('pigz', ['-6', '-i', '-p', '2', '-c'], input),
      tool(
        'python3',
        ['-c', 'import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read()))'],
        input,
      ),
    ];
    const modes: string[] = [];
    for (const gz of written) {
      const { data, mode } = await gunzip(gz);
      expect(data.equals(input)).toBe(true);
      modes.push(mode);
    }
    // gzip and Python write no sync flushes at all. pigz does, and where a flush lands in noise its
    // pieces may hold no back-reference and so inflate alone, which gives the same bytes.
    expect([modes[0], modes[3]]).toEqual(['sequential', 'sequential']);
  });

  it('falls back mid-stream when a piece after a mark refers back across it', async () => {
    // zlib's sync flush ends with 00 00 ff ff; one more empty stored block after it makes our exact
    // mark, yet zlib's next block still copies from before it. Inflating that piece alone must fail
    // and the sequential reader take over with the output so far as its dictionary.
    const text = Buffer.from(
      'a line that repeats across the mark, ninety bytes long or so........\n'.repeat(40_000),
    );
    const half = text.length >> 1;
    const deflater = zlib.createDeflateRaw({ level: 6 });
    const first: Buffer[] = [];
    deflater.on('data', (c: Buffer) => first.push(c));
    deflater.write(text.subarray(0, half));
    await new Promise<void>((resolve) => deflater.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
    const a = Buffer.concat(first.splice(0));
    expect(a.subarray(-4).toString('hex')).toBe('0000ffff');
    deflater.end(text.subarray(half));
    await new Promise((resolve) => deflater.on('end', resolve));
    const b = Buffer.concat(first);
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(zlib.crc32(text), 0);
    trailer.writeUInt32LE(text.length, 4);
    const gz = Buffer.concat([
      Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
      a,
      Buffer.from('000000ffff', 'hex'),
      b,
      trailer,
    ]);
    expect(tool('gunzip', ['-c'], gz).equals(text)).toBe(true);
    const { data, mode } = await gunzip(gz, 4096, true);
    expect(mode).toBe('sequential');
    expect(data.equals(text)).toBe(true);
  });

  it('falls back at the last piece after many reused buffers, with the right dictionary', async () => {
    // Eight marked 1 MiB pieces (their output buffers recycled as the reader releases them), then
    // a final block from zlib that copies from the last 32 KiB before it.
    const { nativeAddon } = await import('../../src/io/native.js');
    const addon = nativeAddon()!;
    const head = mixed(8 * 1024 * 1024, 4);
    const pieces: Buffer[] = [];
    for (let at = 0; at < head.length; at += 1 << 20)
      pieces.push(await addon.deflatePiece!(head.subarray(at, at + (1 << 20)), 6, false));
    const tailText = Buffer.concat([head.subarray(head.length - 30_000), Buffer.from('and the end\n')]);
    const last = zlib.deflateRawSync(tailText, { dictionary: head.subarray(head.length - 32768) });
    const whole = Buffer.concat([head, tailText]);
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(zlib.crc32(whole), 0);
    trailer.writeUInt32LE(whole.length, 4);
    const gz = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), ...pieces, last, trailer]);
    expect(tool('gunzip', ['-c'], gz).equals(whole)).toBe(true);
    const { data, mode } = await gunzip(gz, 65536, true);
    expect(mode).toBe('sequential');
    expect(data.equals(whole)).toBe(true);
  });

  it('reads a stream of bare marks sequentially instead of as thousands of empty pieces', async () => {
    // Empty stored blocks (00 00 00 ff ff each) in a row hold our mark every 10 bytes: a hostile
    // but valid member.
    const text = Buffer.from('after the marks\n'.repeat(1000));
    const empties = Buffer.concat(Array.from({ length: 40_000 }, () => Buffer.from('000000ffff', 'hex')));
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(zlib.crc32(text), 0);
    trailer.writeUInt32LE(text.length, 4);
    const gz = Buffer.concat([
      Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
      empties,
      zlib.deflateRawSync(text),
      trailer,
    ]);
    expect(tool('gunzip', ['-c'], gz).equals(text)).toBe(true);
    const { data, mode } = await gunzip(gz, 65536, true);
    expect(mode).toBe('sequential');
    expect(data.equals(text)).toBe(true);
  });

  describe('rejects damage in our members', async () => {
    const content = mixed(3 * 1024 * 1024, 2);
    const gz = await ours(content);
    const patch = (at: number): Buffer => {
      const copy = Buffer.from(gz);
      copy[at]! ^= 0x55;
      return copy;
    };
    const marks: number[] = [];
    const mark = Buffer.from('0000ffff000000ffff', 'hex');
    for (let at = gz.indexOf(mark); at >= 0; at = gz.indexOf(mark, at + 1)) marks.push(at);
    const cases: [string, Buffer, RegExp][] = [
      ['a second member', Buffer.concat([gz, zlib.gzipSync(Buffer.from('more'))]), /more than one member/],
      ['trailing garbage', Buffer.concat([gz, Buffer.from('garbage')]), /unexpected data after/],
      ['a cut in the trailer', gz.subarray(0, gz.length - 3), /truncated/],
      ['no trailer', gz.subarray(0, gz.length - 8), /truncated/],
      ['a cut at a mark', gz.subarray(0, marks[1]! + 9), /truncated/],
      ['a wrong CRC', patch(gz.length - 8), /CRC-32/],
      ['a wrong length', patch(gz.length - 1), /length/],
      ['a corrupt piece', patch(marks[0]! + 5000), /corrupt|CRC-32/],
      ['a damaged mark', patch(marks[1]! + 4), /corrupt|CRC-32/],
    ];
    for (const [name, data, message] of cases) {
      it(`rejects ${name}`, async () => {
        const failure = gunzip(data, 65536, true);
        await expect(failure).rejects.toThrow(message);
        await expect(failure).rejects.toBeInstanceOf(BundleError);
      });
    }
  });
});
