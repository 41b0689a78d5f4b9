// Loads the optional N-API addon (native/amibundle_native.c) built by `npm install`; callers get
// `undefined` when it is missing or disabled with AMIBUNDLE_NO_NATIVE=1 and use their TypeScript fallback.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface NativeAddon {
  /** Data regions by lseek(SEEK_DATA/SEEK_HOLE), flat: [off0, len0, off1, len1, ...], clipped to size.
   * Throws an Error whose `code` is the errno name (EINVAL when the filesystem refuses SEEK_DATA). */
  dataExtents(fd: number, size: number): number[];
  /** One byte per `blockSize` block of `buf` (the last may be short): 1 when all its bytes are zero. */
  zeroBlocks(buf: Uint8Array, blockSize: number): Uint8Array;
  /**
   * One raw-deflate block with the system zlib on libuv's threadpool, primed with `dictionary`,
   * ended with a sync flush, or Z_FINISH when `last`. Present only when libz.so.1 loaded.
   */
  deflateBlock?(
    input: Uint8Array,
    dictionary: Uint8Array | null,
    level: number,
    last: boolean,
  ): Promise<Buffer>;
  /**
   * One block compressed alone by libdeflate (levels 1..12) on the threadpool. Unless `last`, the
   * stream's final block is reopened and two empty stored blocks appended, so the next block can
   * follow in the same deflate stream. Present only when libdeflate.so.0 loaded.
   */
  deflateChunk?(input: Uint8Array, level: number, last: boolean): Promise<Buffer>;
  /**
   * Inflates one independently compressed block into `output` (ISA-L's igzip when libisal.so.2 is
   * there, else libdeflate). A non-final block must end exactly where its deflate data ends (after
   * its stored-block marks); a final one may be followed by other bytes (`consumed` says where it
   * ended). `ok` is false when the data is not such a block or does not fit; bad data never throws.
   */
  inflateChunk?(
    input: Uint8Array,
    final: boolean,
    output: Uint8Array,
  ): Promise<{ ok: boolean; consumed: number; written: number }>;
  /** 'isa-l' or 'libdeflate': what inflateChunk uses. */
  inflateEngine?: string;
  /** An OpenSSL SHA-1 context (from the node binary); absent if node does not export OpenSSL. */
  sha1Create?(): object;
  /** Hashes `data` on the threadpool; at most one update per context may be in flight. */
  sha1Update?(ctx: object, data: Uint8Array): Promise<void>;
  /** Hex digest; the context is spent. */
  sha1Digest?(ctx: object): string;
}

export interface AddonLoad {
  readonly addon?: NativeAddon;
  /** Why it did not load, for debug output. */
  readonly error?: string;
}

// Same relative path from src/io/native.ts (tests) and dist/io/native.js (the installed CLI).
const ADDON_URL = new URL('../../native/build/Release/amibundle_native.node', import.meta.url);

let loaded: AddonLoad | undefined;

function isAddon(m: unknown): m is NativeAddon {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  return typeof r.dataExtents === 'function' && typeof r.zeroBlocks === 'function';
}

/** Loads the addon file once, whatever AMIBUNDLE_NO_NATIVE says (tests use it to see the build worked). */
export function loadAddon(): AddonLoad {
  if (loaded) return loaded;
  try {
    const mod: unknown = createRequire(import.meta.url)(fileURLToPath(ADDON_URL));
    loaded = isAddon(mod) ? { addon: mod } : { error: 'addon lacks dataExtents/zeroBlocks' };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    loaded = {
      error: code === 'MODULE_NOT_FOUND' ? 'not built' : err instanceof Error ? err.message : String(err),
    };
  }
  return loaded;
}

/** The addon to use now, or undefined: not built, failed to load, or AMIBUNDLE_NO_NATIVE=1. */
export function nativeAddon(): NativeAddon | undefined {
  if (process.env.AMIBUNDLE_NO_NATIVE === '1') return undefined;
  return loadAddon().addon;
}
