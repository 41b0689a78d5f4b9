// Streaming zstd compression over zstd-napi's native context, with real back-pressure: output leaves
// in pieces of at most 64 KiB (the AES stage after it is fastest so) and the native call loop pauses
// while the reader is full. Decompression runs on a worker thread: zstd-decompress.ts.
// zstd-napi's binding is loaded on first use (zstd-binding.ts): gzip bundles never need it.

import os from 'node:os';
import { Duplex } from 'node:stream';
import { zstdBinding } from './zstd-binding.js';

export const ZSTD_DEFAULT_LEVEL = 3;
export const ZSTD_MAX_LEVEL = 19;
const OUTPUT_CHUNK = 64 * 1024;

export interface ZstdCompressOptions {
  /** 1..19; default 3. */
  level?: number;
  /** Worker threads inside zstd; default the number of cores. At least one, so the event loop never compresses. */
  threads?: number;
}

interface Job {
  input: Buffer;
  end: boolean;
  callback: (error?: Error | null) => void;
}

/**
 * zstd compressor: one frame with content checksum, compressed by zstd's own worker threads. Each
 * synchronous native step consumes some input and fills at most one 64 KiB output buffer; the loop
 * stops while the reader does not want more output.
 */
export class ZstdCompressor extends Duplex {
  private readonly binding = zstdBinding().binding;
  private readonly cctx = new this.binding.CCtx();
  private job: Job | undefined;
  private wantsData = false;
  private running = false;
  private out = Buffer.allocUnsafe(OUTPUT_CHUNK);

  constructor(opts: ZstdCompressOptions = {}) {
    super({ readableHighWaterMark: OUTPUT_CHUNK, writableHighWaterMark: OUTPUT_CHUNK });
    const level = opts.level ?? ZSTD_DEFAULT_LEVEL;
    checkZstdLevel(level);
    const threads = opts.threads ?? os.availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) {
      throw new RangeError(`zstd threads must be a positive integer (got ${threads})`);
    }
    this.cctx.setParameter(this.binding.CParameter.compressionLevel, level);
    this.cctx.setParameter(this.binding.CParameter.checksumFlag, 1);
    this.cctx.setParameter(this.binding.CParameter.nbWorkers, threads);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.job = { input: chunk, end: false, callback };
    this.run();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.job = { input: Buffer.alloc(0), end: true, callback };
    this.run();
  }

  override _read(): void {
    this.wantsData = true;
    this.run();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.job = undefined;
    callback(error);
  }

  private run(): void {
    // push() may call _read synchronously; the outer loop carries on instead of nesting.
    if (this.running) return;
    this.running = true;
    try {
      while (this.job && this.wantsData && !this.destroyed) {
        const job = this.job;
        let result;
        try {
          result = this.step(this.out, job.input, job.end);
        } catch (error) {
          this.job = undefined;
          job.callback(error as Error);
          return;
        }
        job.input = job.input.subarray(result.consumed);
        if (result.produced > 0) {
          const piece = this.out.subarray(0, result.produced);
          this.out = Buffer.allocUnsafe(OUTPUT_CHUNK);
          this.wantsData = this.push(piece);
        }
        if (!result.complete) continue;
        this.job = undefined;
        if (job.end) this.push(null);
        job.callback();
      }
    } finally {
      this.running = false;
    }
  }

  /** One native call: bytes consumed, bytes produced into `out`, and whether the job is complete. */
  private step(
    out: Buffer,
    input: Buffer,
    end: boolean,
  ): { consumed: number; produced: number; complete: boolean } {
    const [remaining, produced, consumed] = this.cctx.compressStream2(
      out,
      input,
      end ? this.binding.EndDirective.end : this.binding.EndDirective.continue,
    );
    // Mid-stream a job is complete once its input is taken; at the end, once zstd has nothing left.
    const complete = end ? remaining === 0 : consumed === input.length;
    return { consumed, produced, complete };
  }
}

export function checkZstdLevel(level: number): void {
  if (!Number.isInteger(level) || level < 1 || level > ZSTD_MAX_LEVEL) {
    throw new RangeError(`zstd level must be an integer from 1 to ${ZSTD_MAX_LEVEL} (got ${level})`);
  }
}

export function createZstdCompressor(opts: ZstdCompressOptions = {}): ZstdCompressor {
  return new ZstdCompressor(opts);
}

export { createZstdDecompressor, ZstdDecompressor } from './zstd-decompress.js';
