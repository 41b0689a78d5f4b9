// Parallel gzip compressor (pigz's design): one standard gzip member whose deflate body is cut into
// blocks that are compressed concurrently on libuv's threadpool. Two engines: libdeflate (through the
// addon; 2-3x zlib's speed at a better ratio; level 1 goes to ISA-L when it is there) compresses each
// block on its own, with no dictionary, which also lets our reader inflate blocks in parallel; zlib
// primes each block with the 32 KiB before it, as pigz does.

import os from 'node:os';
import { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import { nativeAddon } from '../io/native.js';
import { threadpoolSize } from '../io/threadpool.js';

export interface ParallelGzipOptions {
  /** zlib level 1..9. */
  level: number;
  /** Blocks compressed at once; defaults to the number of cores. */
  threads?: number;
  /** Bytes of input per independently deflated block (default 1 MiB, at least 32 KiB). */
  blockSize?: number;
  /**
   * Deflate engine: 'auto' (the default) picks libdeflate when the addon has it, else zlib.
   * AMIBUNDLE_DEFLATE=zlib in the environment also forces zlib (for comparisons).
   */
  engine?: DeflateEngine | 'auto';
}

/**
 * libdeflate: independent blocks (no dictionary), each ended with our doubled sync mark; level 1 is
 * ISA-L's level 3 when libisal.so.2 is there. zlib: each block primed with the previous 32 KiB.
 */
export type DeflateEngine = 'libdeflate' | 'zlib';

/** The engine 'auto' resolves to on this machine now. */
export function defaultDeflateEngine(): DeflateEngine {
  if (process.env['AMIBUNDLE_DEFLATE'] === 'zlib') return 'zlib';
  return nativeAddon()?.deflateChunk ? 'libdeflate' : 'zlib';
}

export const DEFAULT_GZIP_BLOCK_SIZE = 1024 * 1024;
/** Largest piece pushed downstream: the AES stage after us is fastest with 16-64 KiB chunks. */
export const MAX_OUTPUT_CHUNK = 64 * 1024;
/** Deflate's window: how much of the previous block each block may refer back to. */
const WINDOW = 32 * 1024;
const MIN_BLOCK_SIZE = WINDOW;
const MAX_BLOCK_SIZE = 64 * 1024 * 1024;

interface Finished {
  /** Compressed block, not yet pushed from offset `at`. */
  data: Buffer;
  at: number;
}

/**
 * Duplex stream: raw bytes in, exactly one gzip member out.
 *
 * Memory stays bounded whatever the input size: at most `inFlightLimit` blocks are being compressed,
 * at most twice that many are dispatched but not yet in output order, and input is not accepted
 * while a block's worth of compressed output is waiting for the reader.
 */
export class ParallelGzip extends Duplex {
  readonly level: number;
  readonly engine: DeflateEngine;
  readonly blockSize: number;
  /** Blocks handed to the threadpool at once (threads, capped so file I/O keeps a pool thread). */
  readonly inFlightLimit: number;

  private block: Buffer;
  private blockFill = 0;
  /**
   * Block buffers whose compression finished, for reuse: fresh memory costs a page fault per
   * 4 KiB on first touch (about 1.5 ms per MiB here), more than the copy into the block itself.
   */
  private readonly spareBlocks: Buffer[] = [];
  /** zlib engine: last 32 KiB of the previous block, the next block's preset dictionary. */
  private dictionary: Buffer | undefined;
  private crc = 0;
  private inputSize = 0;

  private nextSeq = 0;
  private nextToQueue = 0;
  private compressing = 0;
  private compressingBytes = 0;
  private readonly done = new Map<number, Buffer>();
  private doneBytes = 0;
  private readonly ready: Finished[] = [];
  private readyBytes = 0;
  private readonly readyLimit: number;

  private wantsData = false;
  /** A write (or the final flush) waiting for a free slot. */
  private held: { chunk: Buffer; callback: (error?: Error | null) => void } | undefined;
  private heldFinal: ((error?: Error | null) => void) | undefined;
  private finalDispatched = false;
  private trailerQueued = false;
  private ended = false;

  constructor(opts: ParallelGzipOptions) {
    super({ readableHighWaterMark: MAX_OUTPUT_CHUNK, writableHighWaterMark: MAX_OUTPUT_CHUNK });
    const { level } = opts;
    if (!Number.isInteger(level) || level < 1 || level > 9) {
      throw new RangeError(`gzip level must be an integer from 1 to 9 (got ${level})`);
    }
    const threads = opts.threads ?? os.availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) {
      throw new RangeError(`gzip threads must be a positive integer (got ${threads})`);
    }
    const blockSize = opts.blockSize ?? DEFAULT_GZIP_BLOCK_SIZE;
    if (!Number.isInteger(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
      throw new RangeError(
        `gzip block size must be an integer from ${MIN_BLOCK_SIZE} to ${MAX_BLOCK_SIZE} bytes`,
      );
    }
    const engine = opts.engine === undefined || opts.engine === 'auto' ? defaultDeflateEngine() : opts.engine;
    if (engine === 'libdeflate' && !nativeAddon()?.deflateChunk) {
      throw new RangeError('the libdeflate engine needs the native addon and libdeflate.so.0 (libdeflate0)');
    }
    this.engine = engine;
    this.level = level;
    this.blockSize = blockSize;
    this.inFlightLimit = Math.min(threads, threadpoolLimit());
    this.readyLimit = blockSize;
    this.block = Buffer.allocUnsafe(blockSize);
    this.enqueue(gzipHeader(level));
  }

  /**
   * Bytes held inside this stream: input not yet compressed plus compressed output not yet pushed.
   * The readable and writable buffers of the stream itself are reported by Node separately.
   */
  get bufferedBytes(): number {
    return this.blockFill + this.compressingBytes + this.doneBytes + this.readyBytes;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.held = { chunk, callback };
    this.pump();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.heldFinal = callback;
    this.pump();
  }

  override _read(): void {
    this.wantsData = true;
    this.drain();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Blocks already on the threadpool cannot be recalled; their results are dropped on arrival.
    this.held = undefined;
    this.heldFinal = undefined;
    this.done.clear();
    this.ready.length = 0;
    this.doneBytes = this.readyBytes = this.blockFill = 0;
    callback(error);
  }

  private canDispatch(): boolean {
    return (
      this.compressing < this.inFlightLimit &&
      this.nextSeq - this.nextToQueue < 2 * this.inFlightLimit &&
      this.readyBytes < this.readyLimit
    );
  }

  /** Moves held input into blocks and blocks onto the threadpool while there is room. */
  private pump(): void {
    if (this.destroyed) return;
    const held = this.held;
    if (held) {
      let { chunk } = held;
      while (chunk.length > 0) {
        if (this.blockFill === this.blockSize) {
          // A full block is only sent once more input proves it is not the last one.
          if (!this.canDispatch()) {
            held.chunk = chunk;
            return;
          }
          this.dispatch(false);
        }
        const n = Math.min(chunk.length, this.blockSize - this.blockFill);
        chunk.copy(this.block, this.blockFill, 0, n);
        this.blockFill += n;
        chunk = chunk.subarray(n);
      }
      this.held = undefined;
      held.callback();
    }
    if (this.heldFinal && !this.finalDispatched) {
      if (!this.canDispatch()) return;
      this.dispatch(true);
      this.finalDispatched = true;
    }
  }

  private dispatch(last: boolean): void {
    const input = this.block.subarray(0, this.blockFill);
    this.crc = zlib.crc32(input, this.crc);
    this.inputSize = (this.inputSize + input.length) % 0x1_0000_0000;
    const dictionary = this.dictionary;
    const block = this.block;
    if (!last) {
      if (this.engine === 'zlib') this.dictionary = Buffer.from(input.subarray(input.length - WINDOW));
      this.block = this.spareBlocks.pop() ?? Buffer.allocUnsafe(this.blockSize);
    }
    this.blockFill = 0;
    const seq = this.nextSeq++;
    this.compressing++;
    this.compressingBytes += input.length;
    const deflate = this.engine === 'libdeflate' ? deflateChunk : deflateBlock;
    deflate(input, this.level, dictionary, last, (error, output) => {
      this.compressing--;
      this.compressingBytes -= input.length;
      if (!last && this.spareBlocks.length < this.inFlightLimit + 1) this.spareBlocks.push(block);
      if (this.destroyed) return;
      if (error || !output) {
        this.destroy(error ?? new Error('deflate produced no output'));
        return;
      }
      this.done.set(seq, output);
      this.doneBytes += output.length;
      this.collect();
      this.queueTrailer();
      this.drain();
      this.pump();
    });
  }

  /** Moves finished blocks that are next in order to the output queue. */
  private collect(): void {
    for (;;) {
      const output = this.done.get(this.nextToQueue);
      if (!output) return;
      this.done.delete(this.nextToQueue);
      this.doneBytes -= output.length;
      this.nextToQueue++;
      this.enqueue(output);
    }
  }

  private queueTrailer(): void {
    // The final block is last in sequence: once it is queued, so is everything before it.
    if (this.trailerQueued || this.nextToQueue !== this.nextSeq || !this.finalDispatched) return;
    const trailer = Buffer.allocUnsafe(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.inputSize, 4);
    this.enqueue(trailer);
    this.trailerQueued = true;
  }

  private enqueue(data: Buffer): void {
    if (data.length === 0) return;
    this.ready.push({ data, at: 0 });
    this.readyBytes += data.length;
  }

  /** Pushes queued output in pieces of at most 64 KiB while the reader wants more. */
  private drain(): void {
    while (this.wantsData && this.ready.length > 0) {
      const head = this.ready[0]!;
      const end = Math.min(head.data.length, head.at + MAX_OUTPUT_CHUNK);
      const piece = head.data.subarray(head.at, end);
      head.at = end;
      this.readyBytes -= piece.length;
      if (end === head.data.length) this.ready.shift();
      this.wantsData = this.push(piece);
    }
    if (this.trailerQueued && this.ready.length === 0 && !this.ended) {
      this.ended = true;
      const final = this.heldFinal;
      this.heldFinal = undefined;
      this.push(null);
      final?.();
      return;
    }
    // Room in the output queue may let held input move on.
    if (this.readyBytes < this.readyLimit && (this.held || this.heldFinal)) this.pump();
  }
}

export function createParallelGzip(opts: ParallelGzipOptions): ParallelGzip {
  return new ParallelGzip(opts);
}

/**
 * Deflates one block with libdeflate on the threadpool. The addon ends a block that is not the last
 * with two empty stored blocks (00 00 ff ff 00 00 00 ff ff): the boundary mark our reader looks for.
 */
function deflateChunk(
  input: Buffer,
  level: number,
  _dictionary: Buffer | undefined,
  last: boolean,
  done: (error: Error | null, output?: Buffer) => void,
): void {
  nativeAddon()!.deflateChunk!(input, level, last).then(
    (output) => done(null, output),
    (error: Error) => done(error),
  );
}

/**
 * Deflates one block with zlib on the threadpool in a single round trip. With Node's zlib the stream's default flush flag is
 * the block's final one, so the write itself ends in a sync flush (or Z_FINISH for the last block)
 * and the output is complete when the write's callback runs. (zlib.deflateRaw would take a second
 * round trip for its end-of-stream flush, leaving a pool thread idle in between.)
 */
function deflateBlock(
  input: Buffer,
  level: number,
  dictionary: Buffer | undefined,
  last: boolean,
  done: (error: Error | null, output?: Buffer) => void,
): void {
  // The system zlib (through the addon) compresses ~2% smaller than Node's bundled Chromium zlib
  // at levels 6-9 — the size gzip and pigz give; Node's zlib is faster, so it keeps levels 1-5.
  const addon = level >= 6 ? nativeAddon() : undefined;
  if (addon?.deflateBlock) {
    addon.deflateBlock(input, dictionary ?? null, level, last).then(
      (output) => done(null, output),
      (error: Error) => done(error),
    );
    return;
  }
  const flush = last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH;
  const engine = zlib.createDeflateRaw({
    level,
    flush,
    finishFlush: flush,
    // Room for the whole block in one call even if it does not compress; a larger result still
    // comes out right, only in more calls.
    chunkSize: Math.max(64 * 1024, input.length + (input.length >>> 8) + 1024),
    ...(dictionary ? { dictionary } : {}),
  });
  const pieces: Buffer[] = [];
  let failed = false;
  engine.on('data', (piece: Buffer) => pieces.push(piece));
  engine.on('error', (error: Error) => {
    if (failed) return;
    failed = true;
    done(error);
  });
  engine.write(input, (error) => {
    if (failed) return;
    engine.close();
    if (error) {
      failed = true;
      done(error);
      return;
    }
    done(null, pieces.length === 1 ? pieces[0] : Buffer.concat(pieces));
  });
}

/** The 10-byte member header: no name, no mtime (reproducible output), OS = Unix. */
export function gzipHeader(level: number): Buffer {
  const xfl = level === 9 ? 2 : level === 1 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, xfl, 0x03]);
}

/**
 * Blocks we may put on libuv's threadpool at once: one pool thread is left free so that the file
 * reads feeding us are not queued behind a second of deflate work.
 */
function threadpoolLimit(): number {
  return Math.max(1, threadpoolSize() - 1);
}
