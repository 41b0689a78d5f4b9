// The addon's system-zlib deflate: present, decodes to the input, and gives gzip's sizes (the
// reason it exists: Node's bundled zlib compresses ~2% worse at levels 6-9).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createParallelGzip } from '../../src/codec/parallel-gzip.js';
import { loadAddon } from '../../src/io/native.js';

/** Compressible but not trivial: text lines with varying numbers and words. */
function sample(bytes: number): Buffer {
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india'];
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const h = crypto.createHash('md5').update(String(i)).digest();
    const line = `${i} ${words[h[0]! % 9]} ${words[h[1]! % 9]} ${h.readUInt32LE(2)} ${h.toString('hex', 6, 10)}\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

async function gzipWith(input: Buffer, level: number, native: boolean): Promise<Buffer> {
  if (native) delete process.env.AMIBUNDLE_NO_NATIVE;
  else process.env.AMIBUNDLE_NO_NATIVE = '1';
  return buffer(
    Readable.from([input]).pipe(createParallelGzip({ level, threads: 2, pieceSize: 256 * 1024 })),
  );
}

afterEach(() => {
  delete process.env.AMIBUNDLE_NO_NATIVE;
});

describe('system zlib deflate in the native addon', () => {
  it('is built and exported', () => {
    expect(typeof loadAddon().addon?.deflatePieceZlib).toBe('function');
  });

  it('a sync-flushed block ends byte-aligned and a final block ends the stream', async () => {
    const addon = loadAddon().addon!;
    const deflatePieceZlib = addon.deflatePieceZlib!.bind(addon);
    const input = sample(100_000);
    const first = await deflatePieceZlib(input.subarray(0, 60_000), null, 6, false);
    expect(first.subarray(-4).toString('hex')).toBe('0000ffff');
    const second = await deflatePieceZlib(
      input.subarray(60_000),
      input.subarray(60_000 - 32768, 60_000),
      6,
      true,
    );
    expect(zlib.inflateRawSync(Buffer.concat([first, second])).equals(input)).toBe(true);
  });

  it('at level 6 the parallel gzip is within 0.5% of GNU gzip -6', async () => {
    const input = sample(4 * 1024 * 1024);
    const native = await gzipWith(input, 6, true);
    const bundled = await gzipWith(input, 6, false);
    expect(zlib.gunzipSync(native).equals(input)).toBe(true);
    expect(zlib.gunzipSync(bundled).equals(input)).toBe(true);
    const gnu = execFileSync('gzip', ['-6', '-c'], { input, maxBuffer: 1 << 26 }).length;
    expect(native.length).toBeLessThanOrEqual(gnu * 1.005);
  });

  it('rejects bad arguments', () => {
    const addon = loadAddon().addon!;
    const deflatePieceZlib = addon.deflatePieceZlib!.bind(addon);
    expect(() => deflatePieceZlib(Buffer.alloc(1), null, 12, true)).toThrow(/level/);
    expect(() => deflatePieceZlib('x' as unknown as Buffer, null, 6, true)).toThrow(/Uint8Array/);
  });
});

describe.runIf(loadAddon().addon?.deflatePiece !== undefined)('libdeflate pieces in the native addon', () => {
  /** Deterministic pseudo-random sizes and kinds: text, noise (stored blocks), tiny (fixed blocks). */
  function pieces(count: number): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const h = crypto.createHash('sha256').update(`piece ${i}`).digest();
      const size = [1, 7, 300, 5000, 70_000, 200_000][h[0]! % 6]!;
      const kind = h[1]! % 3;
      out.push(kind === 0 ? sample(size) : kind === 1 ? crypto.randomBytes(size) : Buffer.alloc(size, i));
    }
    return out;
  }

  // 120 pieces of mixed kinds and levels end at every bit offset, so both layouts of the marker
  // (header bits in the last byte's padding, or in one more byte) are exercised.
  it('reopened pieces continue one deflate stream, whatever padding each ended with', async () => {
    const addon = loadAddon().addon!;
    const input = pieces(120);
    const streams: Buffer[] = [];
    for (const [i, piece] of input.entries()) {
      const level = [1, 6, 9, 12][i % 4]!;
      const last = i === input.length - 1;
      const out = await addon.deflatePiece!(piece, level, last);
      if (!last) {
        expect(out.subarray(-9).toString('hex')).toBe('0000ffff000000ffff');
      }
      streams.push(out);
    }
    expect(zlib.inflateRawSync(Buffer.concat(streams)).equals(Buffer.concat(input))).toBe(true);
  });

  it('inflates a piece alone, and refuses what is not one', async () => {
    const addon = loadAddon().addon!;
    const inflate = async (input: Buffer, final: boolean, room: number) => {
      const output = Buffer.alloc(room);
      const r = await addon.inflatePiece!(input, final, output);
      return { ...r, data: output.subarray(0, r.written) };
    };
    const text = sample(300_000);
    const piece = await addon.deflatePiece!(text, 6, false);
    const whole = await inflate(piece, false, text.length);
    expect(whole.ok).toBe(true);
    expect(whole.consumed).toBe(piece.length);
    expect(whole.data.equals(text)).toBe(true);
    // Too little room, a cut-off piece, and a piece that refers back into a dictionary all fail.
    expect((await inflate(piece, false, text.length - 1)).ok).toBe(false);
    expect((await inflate(piece.subarray(0, piece.length - 20), false, text.length)).ok).toBe(false);
    const primed = zlib.deflateRawSync(text.subarray(100_000), {
      dictionary: text.subarray(68_232, 100_000),
      flush: zlib.constants.Z_SYNC_FLUSH,
    });
    expect((await inflate(primed, false, text.length)).ok).toBe(false);
    // A final piece may be followed by other bytes (the gzip trailer); consumed says where it ended.
    for (const level of [1, 6, 9]) {
      const final = await addon.deflatePiece!(text, level, true);
      const end = await inflate(Buffer.concat([final, Buffer.from('trailer!')]), true, text.length + 10);
      expect(end.ok).toBe(true);
      expect(end.consumed).toBe(final.length);
      expect(end.data.equals(text)).toBe(true);
    }
    // Node's zlib output too (pigz-like data ends in a final block the same way).
    const zfinal = zlib.deflateRawSync(text, { level: 9 });
    const zend = await inflate(Buffer.concat([zfinal, Buffer.alloc(8, 0xee)]), true, text.length);
    expect([zend.ok, zend.consumed]).toEqual([true, zfinal.length]);
    expect(['isa-l', 'libdeflate']).toContain(addon.inflateEngine);
  });

  it('rejects bad arguments', () => {
    const addon = loadAddon().addon!;
    expect(() => addon.deflatePiece!(Buffer.alloc(1), 13, true)).toThrow(/level/);
    expect(() => addon.inflatePiece!(Buffer.alloc(1), true, 5 as unknown as Buffer)).toThrow(/output/);
  });
});

describe('optional native engines', () => {
  /** Whether the dynamic linker knows a library (what the addon's dlopen will find). */
  const installed = (soname: string): boolean =>
    execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).includes(soname);

  it('libdeflate is used when libdeflate.so.0 is installed, ISA-L when libisal.so.2 is', () => {
    const addon = loadAddon().addon!;
    expect(typeof addon.deflatePiece === 'function').toBe(installed('libdeflate.so.0'));
    if (installed('libdeflate.so.0'))
      expect(addon.inflateEngine).toBe(installed('libisal.so.2') ? 'isa-l' : 'libdeflate');
  });

  it('SHA-1 on the threadpool gives crypto.createHash digests, in update order', async () => {
    const { createAsyncSha1, sha1Hex } = await import('../../src/io/async-sha1.js');
    expect(typeof loadAddon().addon!.sha1Create).toBe('function');
    const pieces = [sample(1), sample(100_000), Buffer.alloc(0), crypto.randomBytes(3 * 1024 * 1024)];
    const hash = createAsyncSha1();
    await Promise.all(pieces.map((p) => hash.update(p)));
    const expected = crypto.createHash('sha1').update(Buffer.concat(pieces)).digest('hex');
    expect(await hash.digest()).toBe(expected);
    expect(await sha1Hex(pieces[3]!)).toBe(crypto.createHash('sha1').update(pieces[3]!).digest('hex'));
  });
});
