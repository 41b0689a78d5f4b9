// Parallel gzip compressor (pigz's design): one standard gzip member whose deflate body is cut into
// pieces that are compressed concurrently on libuv's threadpool. Two engines: libdeflate (through the
// addon; 2-3x zlib's speed at a better ratio; level 1 goes to ISA-L when it is there) compresses each
// piece on its own, with no dictionary, which also lets our reader inflate pieces in parallel; zlib
// primes each piece with the 32 KiB before it, as pigz does.

import os from 'node:os';
import { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import { nativeAddon } from '../io/native.js';
import { threadpoolSize } from '../io/threadpool.js';

export interface ParallelGzipOptions {
  /** zlib level 1..9. */
  level: number;
  /** Pieces compressed at once; defaults to the number of cores. */
  threads?: number;
  /** Bytes of input per independently deflated piece (default 1 MiB, at least 32 KiB). */
  pieceSize?: number;
  /**
   * Deflate engine: 'auto' (the default) picks libdeflate when the addon has it, else zlib.
   * AMIBUNDLE_DEFLATE=zlib in the environment also forces zlib (for comparisons).
   */
  engine?: DeflateEngine | 'auto';
}

/**
 * libdeflate: independent pieces (no dictionary), each ended with the piece mark; level 1 is
 * ISA-L's level 3 when libisal.so.2 is there. zlib: each piece primed with the previous 32 KiB.
 */
export type DeflateEngine = 'libdeflate' | 'zlib';

/** The engine 'auto' resolves to on this machine now. */
export function defaultDeflateEngine(): DeflateEngine {
  if (process.env['AMIBUNDLE_DEFLATE'] === 'zlib') return 'zlib';
  return nativeAddon()?.deflatePiece ? 'libdeflate' : 'zlib';
}

/**
 * The unit of work on both sides: 1 MiB of input compressed on its own here, found by its mark and
 * inflated on its own by parallel-gunzip.ts and the addon. It is called a piece everywhere because
 * the other words are taken: a block is deflate's own unit (a piece holds many, and ends with two
 * empty stored blocks) and also tar's 512 bytes; a chunk is what a Node stream hands over.
 */
export const DEFAULT_GZIP_PIECE_SIZE = 1024 * 1024;
/** Largest chunk pushed downstream: the AES stage after us is fastest with 16-64 KiB chunks. */
export const MAX_OUTPUT_CHUNK = 64 * 1024;
/** Deflate's window: how much of the previous piece each piece may refer back to. */
const WINDOW = 32 * 1024;
const MIN_PIECE_SIZE = WINDOW;
const MAX_PIECE_SIZE = 64 * 1024 * 1024;

interface Finished {
  /** Compressed piece, not yet pushed from offset `at`. */
  data: Buffer;
  at: number;
}

/**
 * Duplex stream: raw bytes in, exactly one gzip member out.
 *
 * Memory stays bounded whatever the input size: at most `inFlightLimit` pieces are being compressed,
 * at most twice that many are dispatched but not yet in output order, and input is not accepted
 * while a piece's worth of compressed output is waiting for the reader.
 */
export class ParallelGzip extends Duplex {
  readonly level: number;
  readonly engine: DeflateEngine;
  readonly pieceSize: number;
  /** Pieces handed to the threadpool at once (threads, capped so file I/O keeps a pool thread). */
  readonly inFlightLimit: number;

  private piece: Buffer;
  private pieceFill = 0;
  /**
   * Piece buffers whose compression finished, for reuse: fresh memory costs a page fault per
   * 4 KiB on first touch (about 1.5 ms per MiB here), more than the copy into the piece itself.
   */
  private readonly sparePieces: Buffer[] = [];
  /** zlib engine: last 32 KiB of the previous piece, the next piece's preset dictionary. */
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
    const pieceSize = opts.pieceSize ?? DEFAULT_GZIP_PIECE_SIZE;
    if (!Number.isInteger(pieceSize) || pieceSize < MIN_PIECE_SIZE || pieceSize > MAX_PIECE_SIZE) {
      throw new RangeError(
        `gzip piece size must be an integer from ${MIN_PIECE_SIZE} to ${MAX_PIECE_SIZE} bytes`,
      );
    }
    const engine = opts.engine === undefined || opts.engine === 'auto' ? defaultDeflateEngine() : opts.engine;
    if (engine === 'libdeflate' && !nativeAddon()?.deflatePiece) {
      throw new RangeError('the libdeflate engine needs the native addon and libdeflate.so.0 (libdeflate0)');
    }
    this.engine = engine;
    this.level = level;
    this.pieceSize = pieceSize;
    this.inFlightLimit = Math.min(threads, threadpoolLimit());
    this.readyLimit = pieceSize;
    this.piece = Buffer.allocUnsafe(pieceSize);
    this.enqueue(gzipHeader(level));
  }

  /**
   * Bytes held inside this stream: input not yet compressed plus compressed output not yet pushed.
   * The readable and writable buffers of the stream itself are reported by Node separately.
   */
  get bufferedBytes(): number {
    return this.pieceFill + this.compressingBytes + this.doneBytes + this.readyBytes;
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
    // Pieces already on the threadpool cannot be recalled; their results are dropped on arrival.
    this.held = undefined;
    this.heldFinal = undefined;
    this.done.clear();
    this.ready.length = 0;
    this.doneBytes = this.readyBytes = this.pieceFill = 0;
    callback(error);
  }

  private canDispatch(): boolean {
    return (
      this.compressing < this.inFlightLimit &&
      this.nextSeq - this.nextToQueue < 2 * this.inFlightLimit &&
      this.readyBytes < this.readyLimit
    );
  }

  /** Moves held input into pieces and pieces onto the threadpool while there is room. */
  private pump(): void {
    if (this.destroyed) return;
    const held = this.held;
    if (held) {
      let { chunk } = held;
      while (chunk.length > 0) {
        if (this.pieceFill === this.pieceSize) {
          // A full piece is only sent once more input proves it is not the last one.
          if (!this.canDispatch()) {
            held.chunk = chunk;
            return;
          }
          this.dispatch(false);
        }
        const n = Math.min(chunk.length, this.pieceSize - this.pieceFill);
        chunk.copy(this.piece, this.pieceFill, 0, n);
        this.pieceFill += n;
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
    const input = this.piece.subarray(0, this.pieceFill);
    this.crc = zlib.crc32(input, this.crc);
    this.inputSize = (this.inputSize + input.length) % 0x1_0000_0000;
    const dictionary = this.dictionary;
    const piece = this.piece;
    if (!last) {
      if (this.engine === 'zlib') this.dictionary = Buffer.from(input.subarray(input.length - WINDOW));
      this.piece = this.sparePieces.pop() ?? Buffer.allocUnsafe(this.pieceSize);
    }
    this.pieceFill = 0;
    const seq = this.nextSeq++;
    this.compressing++;
    this.compressingBytes += input.length;
    const deflate = this.engine === 'libdeflate' ? deflatePiece : deflatePieceZlib;
    deflate(input, this.level, dictionary, last, (error, output) => {
      this.compressing--;
      this.compressingBytes -= input.length;
      if (!last && this.sparePieces.length < this.inFlightLimit + 1) this.sparePieces.push(piece);
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

  /** Moves finished pieces that are next in order to the output queue. */
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
    // The final piece is last in sequence: once it is queued, so is everything before it.
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

  /** Pushes queued output in chunks of at most 64 KiB while the reader wants more. */
  private drain(): void {
    while (this.wantsData && this.ready.length > 0) {
      const head = this.ready[0]!;
      const end = Math.min(head.data.length, head.at + MAX_OUTPUT_CHUNK);
      const chunk = head.data.subarray(head.at, end);
      head.at = end;
      this.readyBytes -= chunk.length;
      if (end === head.data.length) this.ready.shift();
      this.wantsData = this.push(chunk);
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
 * Deflates one piece with libdeflate on the threadpool. The addon ends a piece that is not the last
 * with the piece mark (piece-mark.ts): two empty stored blocks, the boundary our reader looks for.
 */
function deflatePiece(
  input: Buffer,
  level: number,
  _dictionary: Buffer | undefined,
  last: boolean,
  done: (error: Error | null, output?: Buffer) => void,
): void {
  nativeAddon()!.deflatePiece!(input, level, last).then(
    (output) => done(null, output),
    (error: Error) => done(error),
  );
}

/**
 * Deflates one piece with zlib on the threadpool in a single round trip. With Node's zlib the stream's default flush flag is
 * the piece's final one, so the write itself ends in a sync flush (or Z_FINISH for the last piece)
 * and the output is complete when the write's callback runs. (zlib.deflateRaw would take a second
 * round trip for its end-of-stream flush, leaving a pool thread idle in between.)
 */
function deflatePieceZlib(
  input: Buffer,
  level: number,
  dictionary: Buffer | undefined,
  last: boolean,
  done: (error: Error | null, output?: Buffer) => void,
): void {
  // The system zlib (through the addon) compresses ~2% smaller than Node's bundled Chromium zlib
  // at levels 6-9 — the size gzip and pigz give; Node's zlib is faster, so it keeps levels 1-5.
  const addon = level >= 6 ? nativeAddon() : undefined;
  if (addon?.deflatePieceZlib) {
    addon.deflatePieceZlib(input, dictionary ?? null, level, last).then(
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
    // Room for the whole piece in one call even if it does not compress; a larger result still
    // comes out right, only in more calls.
    chunkSize: Math.max(64 * 1024, input.length + (input.length >>> 8) + 1024),
    ...(dictionary ? { dictionary } : {}),
  });
  const outputs: Buffer[] = [];
  let failed = false;
  engine.on('data', (output: Buffer) => outputs.push(output));
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
    done(null, outputs.length === 1 ? outputs[0] : Buffer.concat(outputs));
  });
}

/** The 10-byte member header: no name, no mtime (reproducible output), OS = Unix. */
export function gzipHeader(level: number): Buffer {
  const xfl = level === 9 ? 2 : level === 1 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, xfl, 0x03]);
}

/**
 * Pieces we may put on libuv's threadpool at once: one pool thread is left free so that the file
 * reads feeding us are not queued behind a second of deflate work.
 */
function threadpoolLimit(): number {
  return Math.max(1, threadpoolSize() - 1);
}
