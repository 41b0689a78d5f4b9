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
    Readable.from([input]).pipe(createParallelGzip({ level, threads: 2, blockSize: 256 * 1024 })),
  );
}

afterEach(() => {
  delete process.env.AMIBUNDLE_NO_NATIVE;
});

describe('system zlib deflate in the native addon', () => {
  it('is built and exported', () => {
    expect(typeof loadAddon().addon?.deflateBlock).toBe('function');
  });

  it('a sync-flushed block ends byte-aligned and a final block ends the stream', async () => {
    const addon = loadAddon().addon!;
    const deflateBlock = addon.deflateBlock!.bind(addon);
    const input = sample(100_000);
    const first = await deflateBlock(input.subarray(0, 60_000), null, 6, false);
    expect(first.subarray(-4).toString('hex')).toBe('0000ffff');
    const second = await deflateBlock(
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
    const deflateBlock = addon.deflateBlock!.bind(addon);
    expect(() => deflateBlock(Buffer.alloc(1), null, 12, true)).toThrow(/level/);
    expect(() => deflateBlock('x' as unknown as Buffer, null, 6, true)).toThrow(/Uint8Array/);
  });
});
