// The one compression entry point the bundle and restore pipelines use: gzip (parallel, one member,
// what EC2 expects) or zstd (amibundle's faster option), each as a back-pressured Duplex stream.

import type { Duplex } from 'node:stream';
import { createParallelGzip } from './parallel-gzip.js';
import { canInflateInParallel, createParallelGunzip, ParallelGunzip } from './parallel-gunzip.js';
import { createSequentialGunzip, forcedInflate, IsalGunzip } from './isal-gunzip.js';
import { createZstdCompressor, createZstdDecompressor, ZstdDecompressor } from './zstd.js';

export type CompressionCodec = 'gzip' | 'zstd';

export const COMPRESSION_CODECS: readonly CompressionCodec[] = ['gzip', 'zstd'];

/** Level ranges per codec (zstd's 20..22 need huge windows and are left out on purpose). */
export const LEVEL_RANGE: Readonly<Record<CompressionCodec, { min: number; max: number; default: number }>> =
  {
    gzip: { min: 1, max: 9, default: 6 },
    zstd: { min: 1, max: 19, default: 3 },
  };

export interface CompressorOptions {
  codec: CompressionCodec;
  level: number;
  /** Pieces (gzip) or workers (zstd) compressing at once. */
  threads: number;
}

/** Throws RangeError naming the codec and its range when `level` is not allowed. */
export function checkLevel(codec: CompressionCodec, level: number): void {
  const range = LEVEL_RANGE[codec];
  if (!Number.isInteger(level) || level < range.min || level > range.max) {
    throw new RangeError(
      `${codec} compression level must be an integer from ${range.min} to ${range.max} (got ${level})`,
    );
  }
}

export function createCompressor(opts: CompressorOptions): Duplex {
  checkCodec(opts.codec);
  checkLevel(opts.codec, opts.level);
  if (!Number.isInteger(opts.threads) || opts.threads < 1) {
    throw new RangeError(`compression threads must be a positive integer (got ${opts.threads})`);
  }
  if (opts.codec === 'gzip') return createParallelGzip({ level: opts.level, threads: opts.threads });
  return createZstdCompressor({ level: opts.level, threads: opts.threads });
}

export interface DecompressorOptions {
  /**
   * The caller compares a digest over every output byte (a restore: the manifest's SHA-1 of the
   * tar stream), so a codec may skip a content checksum that would cost its critical thread time:
   * zstd's XXH64. gzip's CRC-32 is still checked (the inflate threads compute it on the way).
   */
  outputDigestChecked?: boolean;
}

/**
 * gzip: exactly one member, CRC-32 and length checked, nothing after it (a second member or
 * trailing bytes are errors); read in parallel where the addon has libdeflate (it falls back to the
 * sequential reader by itself for members not written that way: ISA-L's streaming inflate when it
 * is loaded, else zlib; AMIBUNDLE_INFLATE forces one, see isal-gunzip.ts). zstd: standard frames,
 * their checksums checked unless `outputDigestChecked`.
 */
export function createDecompressor(codec: CompressionCodec, opts: DecompressorOptions = {}): Duplex {
  checkCodec(codec);
  if (codec === 'zstd')
    return createZstdDecompressor({ checkContentChecksum: opts.outputDigestChecked !== true });
  return canInflateInParallel() && forcedInflate() === undefined
    ? createParallelGunzip()
    : createSequentialGunzip();
}

function checkCodec(codec: string): asserts codec is CompressionCodec {
  if (!(COMPRESSION_CODECS as readonly string[]).includes(codec)) {
    throw new RangeError(`unknown compression codec '${codec}' (expected gzip or zstd)`);
  }
}

/** The decompressors written here (not Node's zlib): they pool their output and time their work. */
function isOurs(d: Duplex): d is ParallelGunzip | ZstdDecompressor | IsalGunzip {
  return d instanceof ParallelGunzip || d instanceof ZstdDecompressor || d instanceof IsalGunzip;
}

/**
 * How to give a decompressor's output chunks back for reuse, for decompressors that pool them (the
 * caller must be completely done with a chunk first); undefined for the others.
 */
export function chunkReleaser(decompressor: Duplex): ((chunk: Buffer) => void) | undefined {
  return isOurs(decompressor) ? (chunk) => decompressor.release(chunk) : undefined;
}

/**
 * Wall seconds `decompressor` had inflate work under way (io/busy-clock.ts), for the restore's
 * stage report; undefined for Node's zlib reader, whose work happens out of sight.
 */
export function inflateBusySeconds(decompressor: Duplex): number | undefined {
  return isOurs(decompressor) ? decompressor.busySeconds : undefined;
}
