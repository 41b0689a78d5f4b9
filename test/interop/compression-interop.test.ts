// Compression against the real tools: GNU gzip/gunzip, Python's gzip module and the zstd CLI read
// what we write, and our strict decompressors read what they write (and reject what a bundle must not hold).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { createCompressor, createDecompressor } from '../../src/codec/compression.js';
import type { CompressionCodec } from '../../src/codec/compression.js';
import { BundleError } from '../../src/errors.js';
import { runStream, split } from '../support/streams.js';

const work = mkdtempSync(join(tmpdir(), 'amibundle-compression-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function sample(length: number, seed: number): Buffer {
  const words = ['ext4', 'inode', 'journal', 'superblock', 'bitmap', 'extent', 'lost+found', '\n'];
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  let at = 0;
  while (at < length) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const r = x >>> 0;
    if (r % 5 === 0) {
      // A run of noise, then a hole-like stretch of zeros.
      for (let i = 0; i < 2000 && at < length; i++) out[at++] = (r >>> (i % 24)) & 0xff;
      at += 3000;
    } else {
      at += out.write(`${words[r % words.length]!} `, at);
    }
  }
  return out;
}

const compress = async (
  codec: CompressionCodec,
  level: number,
  input: Buffer,
  threads = 2,
): Promise<Buffer> =>
  (await runStream(createCompressor({ codec, level, threads }), split(input, 100_000))).output;
const decompress = async (codec: CompressionCodec, input: Buffer[]): Promise<Buffer> =>
  (await runStream(createDecompressor(codec), input)).output;

function tool(command: string, args: string[], input?: Buffer): Buffer {
  const result = spawnSync(command, args, { input, maxBuffer: 256 * 1024 * 1024 });
  if (result.error) throw result.error;
  expect(result.status, `${command} ${args.join(' ')}: ${result.stderr.toString()}`).toBe(0);
  return result.stdout;
}

// Debian's interpreter directly: a version-manager shim in PATH costs most of a second per call.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const PY_GUNZIP = 'import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))';

describe('gzip interop', () => {
  const input = Buffer.concat([sample(1_200_000, 7), Buffer.alloc(600_000), sample(300_000, 9)]);

  for (const level of [1, 6, 9]) {
    it(`GNU gunzip, gzip -l and Python read our level ${level} member`, async () => {
      const gz = await compress('gzip', level, input);
      expect(tool('gunzip', ['-c'], gz).equals(input)).toBe(true);
      expect(tool(PYTHON, ['-c', PY_GUNZIP], gz).equals(input)).toBe(true);
      const file = join(work, `level${level}.gz`);
      writeFileSync(file, gz);
      tool('gzip', ['-t', file]);
      // gzip -lv reads the trailer: CRC and uncompressed size must be those of the input.
      const lines = tool('gzip', ['-lv', file]).toString().trim().split('\n');
      expect(lines).toHaveLength(2);
      const fields = lines[1]!.trim().split(/\s+/);
      expect(fields[0]).toBe('defla');
      expect(fields[1]).toBe(zlib.crc32(input).toString(16).padStart(8, '0'));
      expect(Number(fields[6])).toBe(input.length);
      expect((await decompress('gzip', split(gz, 65536))).equals(input)).toBe(true);
    });
  }

  it('reads members written by GNU gzip (with file name and time) and by Python', async () => {
    const file = join(work, 'named.img');
    writeFileSync(file, input);
    const named = tool('gzip', ['-9', '-c', file]);
    expect(named[3]! & 0x08).toBe(0x08);
    expect((await decompress('gzip', split(named, 1000))).equals(input)).toBe(true);
    const piped = tool('gzip', ['-1', '-c'], input);
    expect((await decompress('gzip', [piped])).equals(input)).toBe(true);
    const py = tool(
      PYTHON,
      [
        '-c',
        'import gzip,sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read(), 5, mtime=1234))',
      ],
      input,
    );
    expect((await decompress('gzip', [py])).equals(input)).toBe(true);
  });

  it('reads a header carrying FEXTRA, FNAME, FCOMMENT and FHCRC, fed one byte at a time', async () => {
    const content = Buffer.from('header flags all set\n'.repeat(50));
    const head = Buffer.concat([
      Buffer.from([0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 1, 2, 3, 4, 0, 3]),
      Buffer.from([4, 0, 0xaa, 0xbb, 0xcc, 0xdd]),
      Buffer.from('image.img\0comment here\0'),
    ]);
    const hcrc = Buffer.alloc(2);
    hcrc.writeUInt16LE(zlib.crc32(head) & 0xffff);
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(zlib.crc32(content), 0);
    trailer.writeUInt32LE(content.length, 4);
    const member = Buffer.concat([head, hcrc, zlib.deflateRawSync(content), trailer]);
    expect(tool('gunzip', ['-c'], member).equals(content)).toBe(true);
    expect((await decompress('gzip', split(member, 1))).equals(content)).toBe(true);
    const badHcrc = Buffer.from(member);
    badHcrc[head.length]! ^= 1;
    await expect(decompress('gzip', [badHcrc])).rejects.toThrow(/header checksum/);
  });

  describe('rejects what a bundle must not hold', () => {
    const content = sample(200_000, 3);
    const member = zlib.gzipSync(content);
    const cases: [string, Buffer, RegExp][] = [
      [
        'a second member',
        Buffer.concat([member, zlib.gzipSync(Buffer.from('more'))]),
        /more than one member/,
      ],
      ['trailing garbage', Buffer.concat([member, Buffer.from('garbage')]), /unexpected data after/],
      ['trailing zeros', Buffer.concat([member, Buffer.alloc(512)]), /unexpected data after/],
      ['one trailing byte', Buffer.concat([member, Buffer.from([0x1f])]), /unexpected data after/],
      ['a cut in the body', member.subarray(0, member.length >> 1), /truncated/],
      ['a cut in the trailer', member.subarray(0, member.length - 3), /truncated/],
      ['no trailer', member.subarray(0, member.length - 8), /truncated/],
      ['a cut in the header', member.subarray(0, 6), /truncated/],
      ['a wrong CRC', patch(member, member.length - 8), /CRC-32/],
      ['a wrong length', patch(member, member.length - 1), /length/],
      ['a corrupt body', patch(member, 40), /corrupt/],
      ['data that is not gzip', Buffer.from('PK\x03\x04 not gzip at all'), /not gzip/],
      ['nothing at all', Buffer.alloc(0), /empty/],
    ];
    for (const [name, data, message] of cases) {
      it(`rejects ${name}`, async () => {
        for (const chunkSize of [data.length || 1, 7]) {
          const failure = decompress('gzip', split(data, chunkSize));
          await expect(failure).rejects.toThrow(message);
          await expect(failure).rejects.toBeInstanceOf(BundleError);
        }
      });
    }
  });

  it('round-trips several MiB through createCompressor and createDecompressor', async () => {
    const big = Buffer.concat([input, input.subarray(0, 1_000_003)]);
    const gz = await compress('gzip', 6, big, 4);
    expect((await decompress('gzip', split(gz, 16384))).equals(big)).toBe(true);
  });
});

describe('zstd interop', () => {
  const input = Buffer.concat([sample(1_000_000, 11), Buffer.alloc(1_000_000)]);

  it('the zstd CLI reads and checks our frame', async () => {
    const zst = await compress('zstd', 3, input);
    expect(tool('zstd', ['-d', '-c', '-q'], zst).equals(input)).toBe(true);
    const file = join(work, 'ours.zst');
    writeFileSync(file, zst);
    tool('zstd', ['-t', '-q', file]);
    const listing = tool('zstd', ['-lv', file]).toString();
    expect(listing).toMatch(/Check: XXH64/);
    expect(listing).toMatch(/# Zstandard Frames: 1/);
  });

  it('reads what the zstd CLI writes, at a low and a high level', async () => {
    for (const level of ['-1', '-19']) {
      const zst = tool('zstd', [level, '-c', '-q'], input);
      expect((await decompress('zstd', split(zst, 65536))).equals(input)).toBe(true);
    }
    const file = join(work, 'cli.img');
    writeFileSync(file, input);
    tool('zstd', ['-3', '-q', '-f', file]);
    expect((await decompress('zstd', [readFileSync(`${file}.zst`)])).equals(input)).toBe(true);
  });
});

function patch(data: Buffer, at: number): Buffer {
  const copy = Buffer.from(data);
  copy[at]! ^= 0x55;
  return copy;
}
