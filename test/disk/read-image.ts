// What the reader tests share: an image read back through openDiskImage() with the extent
// contract checked on the way (ascending, contiguous from 0 to the virtual size, data at most
// MAX_CHUNK, holes never next to holes), digested, and compared with a raw file.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { expect } from 'vitest';
import { MAX_CHUNK, openDiskImage, type DiskImage } from '../../src/disk/read/detect.js';

export interface ReadBack {
  format: string;
  virtualSize: number;
  sha256: string;
  dataBytes: number;
  extents: number;
}

const ZEROS = Buffer.alloc(MAX_CHUNK);

/** Feeds `length` zero bytes to `hash`. */
function hashZeros(hash: crypto.Hash, length: number): void {
  for (let left = length; left > 0; left -= ZEROS.length)
    hash.update(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
}

/** Reads `image` to the end, checking the extent contract; `budget` stops a huge image early. */
export async function readBack(image: DiskImage, budget = Number.POSITIVE_INFINITY): Promise<ReadBack> {
  const hash = crypto.createHash('sha256');
  let at = 0;
  let dataBytes = 0;
  let extents = 0;
  let lastWasHole = false;
  for await (const e of image.extents()) {
    expect(e.offset).toBe(at);
    expect(e.length).toBeGreaterThan(0);
    if (e.data) {
      expect(e.data.length).toBe(e.length);
      expect(e.length).toBeLessThanOrEqual(MAX_CHUNK);
      hash.update(e.data);
      dataBytes += e.length;
      lastWasHole = false;
    } else {
      expect(lastWasHole).toBe(false);
      hashZeros(hash, Math.min(e.length, budget));
      lastWasHole = true;
    }
    at += e.length;
    extents++;
    if (at > budget) break;
  }
  if (at <= budget) expect(at).toBe(image.virtualSize);
  return {
    format: image.format,
    virtualSize: image.virtualSize,
    sha256: hash.digest('hex'),
    dataBytes,
    extents,
  };
}

/** Opens, reads back and closes `file`. */
export async function readFile(file: string): Promise<ReadBack> {
  const image = await openDiskImage(file);
  try {
    return await readBack(image);
  } finally {
    await image.close();
  }
}

/** SHA-256 of `raw` followed by zeros up to `size` bytes. */
export function rawDigest(raw: string, size: number): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(raw, 'r');
  const buf = Buffer.alloc(MAX_CHUNK);
  let at = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, Math.min(buf.length, size - at), at);
    if (n <= 0) break;
    hash.update(buf.subarray(0, n));
    at += n;
  }
  fs.closeSync(fd);
  expect(at).toBeLessThanOrEqual(size);
  hashZeros(hash, size - at);
  return hash.digest('hex');
}
