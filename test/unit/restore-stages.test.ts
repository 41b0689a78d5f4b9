// The pieces that took work off the restore's event loop, each against an independent reference:
// CRC-32 combination (pieces' CRCs from the threads that inflated them) against zlib's CRC of the
// whole; in-place AES-128-CBC (the addon's and the fallback) against Node's decipher and OpenSSL's
// command line; PKCS#7 unpadding as `openssl enc -d` checks it; and the busy clock's union of
// overlapping work, on a fake clock.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createInPlaceAesDecryptor, unpaddedLength } from '../../src/codec/aes-cbc.js';
import { crc32Combine } from '../../src/codec/crc32-combine.js';
import { BusyClock } from '../../src/io/busy-clock.js';
import { nativeAddon } from '../../src/io/native.js';

describe('crc32Combine', () => {
  it('gives the CRC-32 of the concatenation for any split, empty halves included', () => {
    const data = crypto.randomBytes(3 * 1024 * 1024 + 17);
    for (const cut of [0, 1, 15, 16, 4095, 1024 * 1024, 2 * 1024 * 1024 + 3, data.length - 1, data.length]) {
      const a = data.subarray(0, cut);
      const b = data.subarray(cut);
      expect(crc32Combine(zlib.crc32(a), zlib.crc32(b), b.length)).toBe(zlib.crc32(data));
    }
  });

  it('chains over many pieces as the parallel reader does', () => {
    let crc = 0;
    const pieces = Array.from({ length: 40 }, (_, i) => crypto.randomBytes(1 + ((i * 7919) % 70000)));
    for (const p of pieces) crc = crc32Combine(crc, zlib.crc32(p), p.length);
    expect(crc).toBe(zlib.crc32(Buffer.concat(pieces)));
  });

  it('refuses a length that is not a byte count', () => {
    expect(() => crc32Combine(1, 2, -1)).toThrow(RangeError);
    expect(() => crc32Combine(1, 2, 1.5)).toThrow(RangeError);
  });
});

describe('in-place AES-128-CBC decryption', () => {
  const key = crypto.randomBytes(16);
  const iv = crypto.randomBytes(16);
  const plain = crypto.randomBytes(5 * 1024 * 1024 + 5);
  const cipher = crypto.createCipheriv('aes-128-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  const original = { ...process.env };
  afterEach(() => {
    process.env = { ...original };
  });

  for (const path of ['addon', 'fallback'] as const) {
    it(`${path}: equals the encrypted stream decrypted whole, fed in uneven block-aligned pieces`, async () => {
      if (path === 'fallback') process.env['AMIBUNDLE_NO_NATIVE'] = '1';
      else expect(typeof nativeAddon()?.aesCbcDecryptUpdate).toBe('function');
      const data = Buffer.from(encrypted);
      const aes = createInPlaceAesDecryptor(key, iv);
      for (const [from, to] of [
        [0, 16],
        [16, 1024 * 1024],
        [1024 * 1024, 1024 * 1024 + 48],
        [1024 * 1024 + 48, data.length],
      ] as const)
        await aes.update(data.subarray(from, to));
      const end = unpaddedLength(data.subarray(data.length - 16));
      expect(Buffer.compare(data.subarray(0, data.length - 16 + end), plain)).toBe(0);
    });
  }

  it('agrees with the openssl command line', async () => {
    const small = crypto.randomBytes(100_000);
    const byOpenssl = execFileSync(
      'openssl',
      ['enc', '-aes-128-cbc', '-K', key.toString('hex'), '-iv', iv.toString('hex')],
      { input: small },
    );
    const aes = createInPlaceAesDecryptor(key, iv);
    await aes.update(byOpenssl);
    const end = unpaddedLength(byOpenssl.subarray(byOpenssl.length - 16));
    expect(Buffer.compare(byOpenssl.subarray(0, byOpenssl.length - 16 + end), small)).toBe(0);
  });

  it('the addon refuses data that is not whole blocks', () => {
    const addon = nativeAddon()!;
    const ctx = addon.aesCbcDecryptCreate!(key, iv);
    expect(() => addon.aesCbcDecryptUpdate!(ctx, Buffer.alloc(17))).toThrow(/multiple of 16/);
    expect(() => addon.aesCbcDecryptCreate!(Buffer.alloc(15), iv)).toThrow(/16 bytes/);
  });
});

describe('unpaddedLength (PKCS#7, as openssl enc -d checks it)', () => {
  it('accepts 1..16 bytes of padding', () => {
    for (let n = 1; n <= 16; n++) {
      const block = Buffer.alloc(16, 0xaa);
      block.fill(n, 16 - n);
      expect(unpaddedLength(block)).toBe(16 - n);
    }
  });

  it('refuses 0, more than 16, and uneven padding bytes', () => {
    const zero = Buffer.alloc(16, 0);
    const big = Buffer.alloc(16, 17);
    const uneven = Buffer.alloc(16, 4);
    uneven[13] = 3;
    for (const block of [zero, big, uneven, Buffer.alloc(15, 1)])
      expect(() => unpaddedLength(block)).toThrow(/bad padding/);
  });
});

describe('BusyClock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('counts overlapping work once and idle time not at all', () => {
    vi.useFakeTimers({ toFake: ['hrtime'] });
    const clock = new BusyClock();
    clock.begin(); // t = 0
    vi.advanceTimersByTime(100);
    clock.begin(); // overlaps the first
    vi.advanceTimersByTime(50);
    clock.end();
    vi.advanceTimersByTime(50);
    clock.end(); // busy 0..200
    vi.advanceTimersByTime(300); // idle
    clock.timeSync(() => vi.advanceTimersByTime(25));
    expect(clock.seconds).toBeCloseTo(0.225, 6);
  });

  it('counts what a work function does synchronously before its promise exists', async () => {
    vi.useFakeTimers({ toFake: ['hrtime'] });
    const clock = new BusyClock();
    await clock.time(() => {
      vi.advanceTimersByTime(30); // a fallback hashing on the spot
      return Promise.resolve();
    });
    expect(clock.seconds).toBeCloseTo(0.03, 6);
  });

  it('counts work still under way up to now, and ignores an unmatched end', async () => {
    vi.useFakeTimers({ toFake: ['hrtime'] });
    const clock = new BusyClock();
    clock.end();
    let finish!: () => void;
    const work = clock.time(() => new Promise<void>((resolve) => (finish = resolve)));
    vi.advanceTimersByTime(40);
    expect(clock.seconds).toBeCloseTo(0.04, 6);
    finish();
    await work;
    vi.advanceTimersByTime(1000);
    expect(clock.seconds).toBeCloseTo(0.04, 6);
  });
});
