// All-zero block scan: the native addon and the TypeScript implementation against a byte-by-byte
// reference, on random buffers with planted zero blocks, odd lengths and unaligned views.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/io/native.js';
import { isAllZero, zeroBlocks, zeroBlocksTs } from '../../src/io/zero-scan.js';

/** Obviously correct, slow reference. */
function reference(buf: Uint8Array, blockSize: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(buf.length / blockSize));
  for (let b = 0; b < out.length; b++) {
    let zero = 1;
    for (let i = b * blockSize; i < Math.min(buf.length, (b + 1) * blockSize); i++)
      if (buf[i] !== 0) zero = 0;
    out[b] = zero;
  }
  return out;
}

/** Deterministic small PRNG so a failure reproduces. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Random bytes with planted zero regions: whole zero blocks, and "almost zero" blocks holding a single
 * nonzero byte at a random spot (first byte, last byte, or inside), which a wrong word scan would miss.
 */
function planted(length: number, blockSize: number, rnd: () => number): Buffer {
  const buf = randomBytes(length);
  for (let s = 0; s < length; s += blockSize) {
    const e = Math.min(length, s + blockSize);
    const r = rnd();
    if (r < 0.4) {
      buf.fill(0, s, e);
    } else if (r < 0.7) {
      buf.fill(0, s, e);
      const spots = [s, e - 1, s + Math.floor(rnd() * (e - s))];
      buf[spots[Math.floor(rnd() * 3)]!] = 1 + Math.floor(rnd() * 255);
    }
  }
  return buf;
}

const addon = loadAddon().addon;

describe('zeroBlocks', () => {
  it('the addon is there to compare against', () => {
    expect(addon).toBeDefined();
  });

  const rnd = lcg(12345);
  for (const blockSize of [512, 4096]) {
    for (const length of [0, 1, 7, 511, 512, 513, 4095, 4096, 4097, 65536 + 333, 1 << 20]) {
      it(`native = TS = reference: block ${blockSize}, length ${length}, offsets 0..9`, () => {
        for (let off = 0; off < 10; off++) {
          // Nonzero bytes around the view catch a scan that reads past its edges.
          const backing = Buffer.alloc(length + 16, 0xff);
          backing.set(planted(length, blockSize, rnd), off);
          const view = backing.subarray(off, off + length);
          const want = reference(view, blockSize);
          expect(zeroBlocksTs(view, blockSize)).toEqual(want);
          expect(addon!.zeroBlocks(view, blockSize)).toEqual(want);
          expect(zeroBlocks(view, blockSize)).toEqual(want);
        }
      });
    }
  }

  it('odd block sizes (not multiples of the word size) agree too', () => {
    const rnd2 = lcg(777);
    for (const blockSize of [1, 3, 13, 100, 1000, 4099]) {
      for (const off of [0, 1, 2, 3, 5]) {
        const length = 20000 - off * 3;
        const backing = Buffer.alloc(length + 8, 0xff);
        backing.set(planted(length, blockSize, rnd2), off);
        const view = backing.subarray(off, off + length);
        const want = reference(view, blockSize);
        expect(zeroBlocksTs(view, blockSize)).toEqual(want);
        expect(addon!.zeroBlocks(view, blockSize)).toEqual(want);
      }
    }
  });

  it('finds a single nonzero byte at every position of a block', () => {
    const buf = new Uint8Array(4096 + 3).subarray(3);
    for (let i = 0; i < 4096; i++) {
      buf[i] = 0x80;
      const want = reference(buf, 512);
      expect(zeroBlocksTs(buf, 512)).toEqual(want);
      expect(addon!.zeroBlocks(buf, 512)).toEqual(want);
      buf[i] = 0;
    }
    expect([...zeroBlocksTs(buf, 512)]).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('accepts a plain Uint8Array over a bigger ArrayBuffer', () => {
    const ab = new ArrayBuffer(3000);
    const view = new Uint8Array(ab, 5, 2048);
    view[1500] = 9;
    expect([...zeroBlocksTs(view, 512)]).toEqual([1, 1, 0, 1]);
    expect([...addon!.zeroBlocks(view, 512)]).toEqual([1, 1, 0, 1]);
  });

  it('rejects bad block sizes and non-byte arrays', () => {
    expect(() => zeroBlocksTs(Buffer.alloc(10), 0)).toThrow(RangeError);
    expect(() => zeroBlocks(Buffer.alloc(10), 1.5)).toThrow(RangeError);
    expect(() => addon!.zeroBlocks(Buffer.alloc(10), 0)).toThrow(TypeError);
    expect(() => addon!.zeroBlocks(new Uint16Array(4) as unknown as Uint8Array, 2)).toThrow(TypeError);
  });
});

describe('isAllZero', () => {
  it('is true only for all-zero buffers, with and without the addon', () => {
    const before = process.env.AMIBUNDLE_NO_NATIVE;
    try {
      for (const flag of [undefined, '1']) {
        if (flag === undefined) delete process.env.AMIBUNDLE_NO_NATIVE;
        else process.env.AMIBUNDLE_NO_NATIVE = flag;
        expect(isAllZero(Buffer.alloc(0))).toBe(true);
        expect(isAllZero(Buffer.alloc(100003))).toBe(true);
        const b = Buffer.alloc(100003);
        b[100002] = 1;
        expect(isAllZero(b)).toBe(false);
        expect(isAllZero(b.subarray(1, 100002))).toBe(true);
        b[1] = 1;
        expect(isAllZero(b.subarray(1, 2))).toBe(false);
        expect(isAllZero(b.subarray(2, 100002))).toBe(true);
      }
    } finally {
      if (before === undefined) delete process.env.AMIBUNDLE_NO_NATIVE;
      else process.env.AMIBUNDLE_NO_NATIVE = before;
    }
  });
});
