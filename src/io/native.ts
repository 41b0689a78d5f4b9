// Loads the optional N-API addon (native/amibundle_native.c); callers get `undefined` when it is
// missing or disabled with AMIBUNDLE_NO_NATIVE=1 and use their TypeScript fallback. Where it comes
// from, first found wins: the copy the single executable carries (registered by its entry), the
// prebuilt the package ships for linux-x64 glibc (made by `npm pack`, so no compiler is needed
// there), then the one `npm install` compiled from source (other platforms, or a clone).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Reporter } from '../events.js';

export interface NativeAddon {
  /** Data regions by lseek(SEEK_DATA/SEEK_HOLE), flat: [off0, len0, off1, len1, ...], clipped to size.
   * Throws an Error whose `code` is the errno name (EINVAL when the filesystem refuses SEEK_DATA). */
  dataExtents(fd: number, size: number): number[];
  /** One byte per `blockSize` block of `buf` (the last may be short): 1 when all its bytes are zero. */
  zeroBlocks(buf: Uint8Array, blockSize: number): Uint8Array;
  /**
   * One piece (codec/parallel-gzip.ts) as raw deflate with the system zlib on libuv's threadpool, primed with `dictionary`,
   * ended with a sync flush, or Z_FINISH when `last`. Present only when libz.so.1 loaded.
   */
  deflatePieceZlib?(
    input: Uint8Array,
    dictionary: Uint8Array | null,
    level: number,
    last: boolean,
  ): Promise<Buffer>;
  /**
   * One piece compressed alone by libdeflate (levels 1..12) on the threadpool. Unless `last`, the
   * stream's final block is reopened and the piece mark appended, so the next piece can
   * follow in the same deflate stream. Present only when libdeflate.so.0 loaded.
   */
  deflatePiece?(input: Uint8Array, level: number, last: boolean): Promise<Buffer>;
  /**
   * Inflates one independently compressed piece into `output` (ISA-L's igzip when libisal.so.2 is
   * there, else libdeflate). A non-final piece must end exactly where its deflate data ends (after
   * the piece mark); a final one may be followed by other bytes (`consumed` says where it
   * ended). `ok` is false when the data is not such a piece or does not fit; bad data never throws.
   */
  inflatePiece?(
    input: Uint8Array,
    final: boolean,
    output: Uint8Array,
  ): Promise<{ ok: boolean; consumed: number; written: number; crc: number }>;
  /**
   * A streaming raw-deflate decoder (ISA-L's isal_inflate) whose gzip CRC-32 continues from `crc`,
   * primed with the last 32 KiB of output before it. Present only when libisal.so.2 loaded.
   */
  inflateStreamCreate?(dictionary: Uint8Array | null, crc: number): object;
  /**
   * One isal_inflate() call on the threadpool: stops when the input is used up, the output is full
   * or the deflate stream ended. `error` < 0 for corrupt data; once `finished`, `unused` input
   * bytes (counted back from the end of this input) follow the stream; `crc` is the CRC-32 so far.
   */
  inflateStreamRun?(
    stream: object,
    input: Uint8Array,
    output: Uint8Array,
  ): Promise<{
    error: number;
    consumed: number;
    written: number;
    finished: boolean;
    unused: number;
    crc: number;
  }>;
  /** 'isa-l' or 'libdeflate': what inflatePiece uses. */
  inflateEngine?: string;
  /** An OpenSSL SHA-1 context (from the node binary); absent if node does not export OpenSSL. */
  sha1Create?(): object;
  /** Hashes `data` on the threadpool; at most one update per context may be in flight. */
  sha1Update?(ctx: object, data: Uint8Array): Promise<void>;
  /** Hex digest; the context is spent. */
  sha1Digest?(ctx: object): string;
  /** An OpenSSL AES-128-CBC decryption context with padding off (from the node binary). */
  aesCbcDecryptCreate?(key: Uint8Array, iv: Uint8Array): object;
  /**
   * Decrypts `data` (a multiple of 16 bytes) in place on the threadpool; at most one update per
   * context may be in flight.
   */
  aesCbcDecryptUpdate?(ctx: object, data: Uint8Array): Promise<void>;
}

export interface AddonLoad {
  readonly addon?: NativeAddon;
  /** The file it was loaded from. */
  readonly file?: string;
  /** Why it did not load, for debug output. */
  readonly error?: string;
}

// Same relative paths from src/io/native.ts (tests) and dist/io/native.js (the installed CLI).
const PREBUILT_URL = new URL('../../prebuilds/linux-x64/amibundle.node', import.meta.url);
const BUILT_URL = new URL('../../native/build/Release/amibundle_native.node', import.meta.url);

let loaded: AddonLoad | undefined;
let registered: AddonLoad | undefined;

function isAddon(m: unknown): m is NativeAddon {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  return typeof r.dataExtents === 'function' && typeof r.zeroBlocks === 'function';
}

/** The prebuilt is linked against glibc on x86-64 Linux; elsewhere only a source build can work. */
export function prebuiltFits(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header;
  return header?.glibcVersionRuntime !== undefined;
}

/** The addon files to try, in order. */
export function addonCandidates(): string[] {
  const files = [fileURLToPath(BUILT_URL)];
  if (prebuiltFits()) files.unshift(fileURLToPath(PREBUILT_URL));
  return files;
}

/** The single executable hands over the addon it loaded from its own asset (or why it could not). */
export function registerAddon(mod: unknown, file: string): void {
  registered = isAddon(mod) ? { addon: mod, file } : { error: `${file}: not the amibundle addon` };
  loaded = undefined;
}

/** Loads the addon file once, whatever AMIBUNDLE_NO_NATIVE says (tests use it to see the build worked). */
export function loadAddon(): AddonLoad {
  if (loaded) return loaded;
  if (registered) return (loaded = registered);
  const errors: string[] = [];
  for (const file of addonCandidates()) {
    if (!fs.existsSync(file)) continue;
    try {
      const mod: unknown = createRequire(import.meta.url)(file);
      if (isAddon(mod)) return (loaded = { addon: mod, file });
      errors.push(`${file}: addon lacks dataExtents/zeroBlocks`);
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
    }
  }
  loaded = { error: errors.length > 0 ? errors.join('; ') : 'not built' };
  return loaded;
}

/** The addon to use now, or undefined: not built, failed to load, or AMIBUNDLE_NO_NATIVE=1. */
export function nativeAddon(): NativeAddon | undefined {
  if (process.env.AMIBUNDLE_NO_NATIVE === '1') return undefined;
  return loadAddon().addon;
}

/** From this size on, running on the fallbacks costs minutes, not seconds. */
export const SLOW_JOB_BYTES = 1024 ** 3;
let slowWarned = false;

/**
 * One warning line per run when a job of `bytes` (an image to bundle or restore) runs without the
 * addon: the result is the same, only several times slower, and `doctor` is not what people run.
 */
export function warnIfNoAddon(out: Reporter, bytes: number): void {
  if (slowWarned || bytes < SLOW_JOB_BYTES || nativeAddon() !== undefined) return;
  slowWarned = true;
  const why =
    process.env.AMIBUNDLE_NO_NATIVE === '1' ? 'AMIBUNDLE_NO_NATIVE=1' : (loadAddon().error ?? 'not loaded');
  out.warn(
    `running without amibundle's native addon (${why}): this ${(bytes / 1024 ** 3).toFixed(1)} GiB job uses the TypeScript and zlib fallbacks, several times slower; 'amibundle doctor' says how to fix it`,
  );
}
