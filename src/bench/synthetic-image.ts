// A synthetic sparse disk image for `amibundle bench` when no -i is given, so the benchmark runs
// anywhere without mke2fs or source files. It is deterministic (same size and fill = same bytes).
//
// Layout: the image is cut into 1 MiB slots; FILL percent of them, spread evenly, hold data and
// the rest are holes. Each data slot is made of 64 KiB blocks: about 72% word-like text
// (compresses about 3x with gzip), 12% pseudo-random bytes (incompressible, like packed or
// already compressed files) and 16% written zeros: gzip -6 makes it about a third of its size,
// like a real 65%-full ext4 system image.
import crypto from 'node:crypto';
import fs from 'node:fs';

const MIB = 1024 * 1024;
const BLOCK = 64 * 1024;
/** Larger than the windows of the zstd levels benchmarked, so text blocks do not repeat within one. */
const TEXT_POOL = 16 * MIB;

export interface SyntheticImage {
  readonly path: string;
  /** Apparent size in bytes. */
  readonly size: number;
  /** Bytes written (everything else is a hole). */
  readonly dataBytes: number;
}

/** A deterministic pseudo-random byte source (AES-128-CTR keystream under a fixed key). */
class Keystream {
  private readonly cipher = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16, 0x5a), Buffer.alloc(16));

  bytes(n: number): Buffer {
    return this.cipher.update(Buffer.alloc(n));
  }
}

const SYLLABLES = [
  'ka',
  'lo',
  'mi',
  'nu',
  're',
  'sa',
  'ti',
  'vo',
  'ex',
  'in',
  'un',
  'ar',
  'el',
  'os',
  'ut',
  'ph',
];

/** 256 words of 2 to 8 letters, so one random byte picks one word. */
function vocabulary(): Buffer[] {
  const words: Buffer[] = [];
  for (let i = 0; i < 256; i++) {
    let w = SYLLABLES[i & 15]! + SYLLABLES[(i >> 4) & 15]!;
    if (i % 3 === 0) w += SYLLABLES[(i * 7) & 15]!;
    if (i % 5 === 0) w = SYLLABLES[(i * 11) & 15]! + w;
    words.push(Buffer.from(w));
  }
  return words;
}

/** TEXT_POOL bytes of random words separated by spaces and newlines. */
function textPool(stream: Keystream): Buffer {
  const words = vocabulary();
  const pool = Buffer.allocUnsafe(TEXT_POOL);
  const picks = stream.bytes(TEXT_POOL / 2);
  let at = 0;
  for (let i = 0; at < TEXT_POOL; i += 2) {
    const word = words[picks[i % picks.length]!]!;
    const n = Math.min(word.length, TEXT_POOL - at);
    word.copy(pool, at, 0, n);
    at += n;
    if (at < TEXT_POOL) pool[at++] = (picks[(i + 1) % picks.length]! & 15) === 0 ? 0x0a : 0x20;
  }
  return pool;
}

/** Whether 1 MiB slot `i` holds data: `fill` percent of slots, spread evenly. */
export function isDataSlot(i: number, fillPercent: number): boolean {
  return Math.floor(((i + 1) * fillPercent) / 100) > Math.floor((i * fillPercent) / 100);
}

export async function writeSyntheticImage(
  file: string,
  sizeMiB: number,
  fillPercent: number,
  signal?: AbortSignal,
): Promise<SyntheticImage> {
  const stream = new Keystream();
  const pool = textPool(stream);
  const handle = await fs.promises.open(file, 'wx', 0o600);
  let dataBytes = 0;
  try {
    const slot = Buffer.allocUnsafe(MIB);
    for (let i = 0; i < sizeMiB; i++) {
      if (!isDataSlot(i, fillPercent)) continue;
      signal?.throwIfAborted();
      const choices = stream.bytes(5 * (MIB / BLOCK));
      for (let b = 0; b < MIB / BLOCK; b++) {
        const kind = choices[5 * b]!;
        const at = b * BLOCK;
        if (kind < 184) {
          const from = choices.readUInt32LE(5 * b + 1) % (TEXT_POOL - BLOCK);
          pool.copy(slot, at, from, from + BLOCK);
        } else if (kind < 215) {
          stream.bytes(BLOCK).copy(slot, at);
        } else {
          slot.fill(0, at, at + BLOCK);
        }
      }
      let done = 0;
      while (done < MIB) done += (await handle.write(slot, done, MIB - done, i * MIB + done)).bytesWritten;
      dataBytes += MIB;
    }
    await handle.truncate(sizeMiB * MIB);
  } finally {
    await handle.close();
  }
  return { path: file, size: sizeMiB * MIB, dataBytes };
}
