// Re-creates a golden fixture's image from its case.json `image.generator` description (big and
// sparse images are not committed: git keeps no holes). The description is data written with the
// fixtures: sorted extents, each filled with "prng" (byte X of the file is byte X of the stream
// SHA-256(seed ‖ u64be(0)) ‖ SHA-256(seed ‖ u64be(1)) ‖ …), "text" (each 512-byte block at
// absolute offset B is "<seed> text block @0x<B, 12 hex digits> " padded with '.' to 511 bytes
// and a newline) or "zero" (written zeros). A sparse image is truncated to size and only its
// extents written; otherwise every byte is written. The result must match the recorded SHA-256.
import { createHash } from 'node:crypto';
import fs from 'node:fs';

export interface GeneratedImage {
  readonly size: number;
  readonly sha256: string;
  readonly mode: string;
  readonly mtime: number;
  readonly generator: {
    readonly sparse: boolean;
    readonly seed: string;
    readonly extents: readonly { offset: number; length: number; fill: 'prng' | 'text' | 'zero' }[];
  };
}

const STEP = 1 << 20;

function prng(seed: string, offset: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  const counter = Buffer.alloc(8);
  for (let block = Math.floor(offset / 32), done = 0; done < length; block++) {
    counter.writeBigUInt64BE(BigInt(block));
    const digest = createHash('sha256').update(seed, 'latin1').update(counter).digest();
    const from = done === 0 ? offset - block * 32 : 0;
    done += digest.copy(out, done, from, Math.min(32, from + length - done));
  }
  return out;
}

function text(seed: string, offset: number, length: number): Buffer {
  if (offset % 512 !== 0 || length % 512 !== 0) throw new Error('a text extent must be 512-byte aligned');
  const out = Buffer.alloc(length);
  for (let at = 0; at < length; at += 512) {
    const line = `${seed} text block @0x${(offset + at).toString(16).padStart(12, '0')} `;
    out.write(`${line.padEnd(511, '.')}\n`, at, 'latin1');
  }
  return out;
}

function fill(seed: string, kind: string, offset: number, length: number): Buffer {
  if (kind === 'prng') return prng(seed, offset, length);
  if (kind === 'text') return text(seed, offset, length);
  if (kind === 'zero') return Buffer.alloc(length);
  throw new Error(`unknown fill ${kind}`);
}

/** Writes the image to `out` with its mode and mtime; throws when its SHA-256 is not the recorded one. */
export function generateFixtureImage(image: GeneratedImage, out: string): void {
  const { sparse, seed, extents } = image.generator;
  const hash = createHash('sha256');
  const fd = fs.openSync(out, 'w', 0o644);
  try {
    if (sparse) fs.ftruncateSync(fd, image.size);
    // Runs to write in order: the extents, and in a non-sparse image the zero gaps between them.
    const runs: { offset: number; length: number; fill: string }[] = [];
    let cursor = 0;
    for (const e of [...extents, { offset: image.size, length: 0, fill: 'zero' }]) {
      if (e.offset < cursor || e.offset + e.length > image.size) throw new Error('bad extent list');
      if (e.offset > cursor) runs.push({ offset: cursor, length: e.offset - cursor, fill: 'hole' });
      if (e.length > 0) runs.push(e);
      cursor = e.offset + e.length;
    }
    for (const run of runs) {
      for (let at = run.offset; at < run.offset + run.length; at += STEP) {
        const n = Math.min(STEP, run.offset + run.length - at);
        const bytes = run.fill === 'hole' ? Buffer.alloc(n) : fill(seed, run.fill, at, n);
        hash.update(bytes);
        if (run.fill !== 'hole' || !sparse) fs.writeSync(fd, bytes, 0, n, at);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.chmodSync(out, parseInt(image.mode, 8));
  fs.utimesSync(out, image.mtime, image.mtime);
  const got = hash.digest('hex');
  if (got !== image.sha256) throw new Error(`${out}: SHA-256 ${got}, the fixture records ${image.sha256}`);
}
