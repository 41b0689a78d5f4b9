// Parallel gzip reader. Our libdeflate engine (parallel-gzip.ts) ends every piece but the last with
// the piece mark (piece-mark.ts: two empty stored blocks) and compresses each piece without a
// dictionary, so a reader can cut the member at those marks and inflate the pieces concurrently.
// That is a guess, checked exactly: each piece must inflate on its own and end precisely at its
// mark, and the whole output must match the trailer's CRC-32 and length. The first piece that fails
// (or a stream with no marks at all: gzip -9, pigz, older bundles) is handed, with the output so far,
// to the sequential strict reader (igzip streaming when loaded, else zlib), which finishes the member. Either way the result is the same bytes.

import os from 'node:os';
import zlib from 'node:zlib';
import { Duplex } from 'node:stream';
import { BundleError } from '../errors.js';
import { BusyClock } from '../io/busy-clock.js';
import { crc32Combine } from './crc32-combine.js';
import { type NativeAddon, nativeAddon } from '../io/native.js';
import { threadpoolSize } from '../io/threadpool.js';
import { PIECE_MARK } from './piece-mark.js';
import { createSequentialGunzip, IsalGunzip } from './isal-gunzip.js';
import {
  afterMember,
  GUNZIP_HINT,
  gzipHeaderLength,
  MAX_GZIP_HEADER,
  SingleMemberGunzip,
} from './single-member-gunzip.js';

const MARK = PIECE_MARK;
/** Output room per piece: our writer's pieces are 1 MiB; larger pieces go the sequential way. */
const PIECE_CAPACITY = 4 * 1024 * 1024;
/** Compressed bytes without a mark after which the stream is taken not to be ours. */
const MAX_PIECE_INPUT = PIECE_CAPACITY + 64 * 1024;
/** Pooled input buffers' size: a piece never grows past MAX_PIECE_INPUT plus one write. */
const INPUT_CAPACITY = MAX_PIECE_INPUT + 256 * 1024;
/**
 * A marked piece shorter than this is not ours (1 MiB of zeros deflates to about 1 KiB): a stream
 * of bare marks would otherwise cost a threadpool round trip per 9 bytes. It is read sequentially.
 */
const MIN_PIECE_INPUT = 256;
/** Undelivered pieces that may be inflated (or inflating) at once, per thread. */
const AHEAD_PER_THREAD = 2;
/** Pieces smaller than this are copied to plain buffers, not pooled ones. */
const SMALL_PIECE = 64 * 1024;
const WINDOW = 32 * 1024;
const OUTPUT_HIGH_WATER = 1024 * 1024;

interface Piece {
  input: Buffer;
  final: boolean;
  /** Where the piece inflates to (from the pool). */
  output?: Buffer;
  /** Set when inflating ended; `ok` false when the piece did not inflate alone. */
  result?: { ok: boolean; consumed: number; written: number; crc: number };
  /** A piece that grew past MAX_PIECE_INPUT without a mark: never inflated alone. */
  unmarked?: boolean;
  /** On the threadpool now. */
  running?: boolean;
}

type InflatePiece = NonNullable<NativeAddon['inflatePiece']>;

/** Whether this machine can read gzip members in parallel (the addon with libdeflate or ISA-L). */
export function canInflateInParallel(): boolean {
  return nativeAddon()?.inflatePiece !== undefined;
}

/** Duplex stream: one gzip member in, its uncompressed bytes out (CRC-32 and length checked). */
export class ParallelGunzip extends Duplex {
  private readonly inflatePiece: InflatePiece;
  private readonly limit: number;
  private header: Buffer | undefined = Buffer.alloc(0);
  /** Compressed bytes not yet cut into pieces: acc[start, length). */
  private acc = Buffer.allocUnsafe(256 * 1024);
  private start = 0;
  private length = 0;
  private scanned = 0;
  /** Pieces not yet delivered, in stream order. */
  private readonly pieces: Piece[] = [];
  private running = 0;
  private crc = 0;
  private size = 0;
  /**
   * A copy of the last 32 KiB of output (outputs themselves are reused): the sequential reader's
   * dictionary if it has to take over.
   */
  private readonly window = Buffer.allocUnsafe(WINDOW);
  private windowFill = 0;
  private wantsData = false;
  private heldWrite: (() => void) | undefined;
  private heldFinal: ((error?: Error | null) => void) | undefined;
  private sequential: SingleMemberGunzip | IsalGunzip | undefined;
  /**
   * A piece without a mark is queued (it stays until the sequential reader takes everything): a
   * flag, not a scan of the queue, which holds hundreds of pieces where the image has zeros.
   */
  private unmarkedQueued = false;
  /**
   * Reused piece buffers. Fresh memory costs a page fault per 4 KiB on first touch (1.5-4 ms per
   * MiB on the VMs measured: more than inflating it), so inputs come back when their piece has
   * inflated, and outputs when the reader calls release() (the restore pipeline does; any other
   * reader just lets them go to the garbage collector).
   */
  private readonly spareInputs: Buffer[] = [];
  private readonly spareOutputs: Buffer[] = [];
  private readonly lent = new WeakSet<ArrayBuffer>();
  private readonly busy = new BusyClock();

  constructor() {
    super({ readableHighWaterMark: OUTPUT_HIGH_WATER, writableHighWaterMark: 64 * 1024 });
    const addon = nativeAddon();
    if (!addon?.inflatePiece) throw new RangeError('parallel gunzip needs the native addon with libdeflate');
    this.inflatePiece = addon.inflatePiece.bind(addon);
    // Two cores inflate twice as fast; more pieces in flight than the threadpool has free threads
    // would queue file writes behind them.
    this.limit = Math.max(1, Math.min(os.availableParallelism(), threadpoolSize() - 1));
  }

  /** Wall seconds with an inflate under way, here and in the sequential reader that took over. */
  get busySeconds(): number {
    return this.busy.seconds + (this.sequential instanceof IsalGunzip ? this.sequential.busySeconds : 0);
  }

  /** Which sequential reader took over (none yet: undefined). */
  get sequentialEngine(): 'isal' | 'zlib' | undefined {
    if (!this.sequential) return undefined;
    return this.sequential instanceof IsalGunzip ? 'isal' : 'zlib';
  }

  /** 'parallel' until the first piece that did not inflate alone, then 'sequential'. */
  get mode(): 'parallel' | 'sequential' {
    return this.sequential ? 'sequential' : 'parallel';
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.sequential) {
      this.writeSequential(chunk, callback);
      return;
    }
    try {
      if (this.header) {
        const header = Buffer.concat([this.header, chunk]);
        const length = gzipHeaderLength(header);
        if (length < 0) {
          if (header.length > MAX_GZIP_HEADER) throw new BundleError('gzip header is too long', GUNZIP_HINT);
          this.header = header;
          callback();
          return;
        }
        this.header = undefined;
        chunk = header.subarray(length);
      }
      this.append(chunk);
      this.cut();
    } catch (error) {
      callback(error as Error);
      return;
    }
    this.heldWrite = () => callback();
    // An unmarked piece is already decided: delivering (in order) hands it to the sequential reader.
    this.deliver();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.sequential) {
      this.sequential.end();
      this.heldFinal = callback;
      return;
    }
    if (this.header) {
      const empty = this.header.length === 0;
      callback(new BundleError(empty ? 'gzip data is empty' : 'gzip data is truncated', GUNZIP_HINT));
      return;
    }
    this.heldFinal = callback;
    this.pieces.push({ input: this.pieceInput(this.acc.subarray(this.start, this.length)), final: true });
    this.start = this.length = this.scanned = 0;
    this.deliver();
  }

  override _read(): void {
    this.wantsData = true;
    if (this.sequential) this.sequential.resume();
    else this.deliver();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Pieces on the threadpool finish anyway; their results are then ignored.
    this.sequential?.destroy();
    this.pieces.length = 0;
    callback(error);
  }

  private append(data: Buffer): void {
    if (this.length + data.length > this.acc.length) {
      const live = this.length - this.start;
      const room = Math.max(this.acc.length, 2 * (live + data.length));
      const next = room > this.acc.length ? Buffer.allocUnsafe(room) : this.acc;
      this.acc.copy(next, 0, this.start, this.length);
      this.acc = next;
      this.scanned -= this.start;
      this.length = live;
      this.start = 0;
    }
    data.copy(this.acc, this.length);
    this.length += data.length;
  }

  /** Cuts every marked piece out of the accumulated input. */
  private cut(): void {
    for (;;) {
      const from = Math.max(this.start, this.scanned - (MARK.length - 1));
      const at = this.acc.subarray(0, this.length).indexOf(MARK, from);
      if (at < 0) {
        this.scanned = this.length;
        if (this.length - this.start > MAX_PIECE_INPUT) this.giveUp();
        return;
      }
      const end = at + MARK.length;
      if (end - this.start < MIN_PIECE_INPUT) {
        this.giveUp();
        return;
      }
      this.pieces.push({ input: this.pieceInput(this.acc.subarray(this.start, end)), final: false });
      this.start = this.scanned = end;
    }
  }

  /** A copy of a piece's bytes, in a pooled buffer when it fits one and is worth one. */
  private pieceInput(bytes: Buffer): Buffer {
    // Small pieces (runs of zeros compress to a few hundred bytes per MiB) come from the heap.
    if (bytes.length < SMALL_PIECE || bytes.length > INPUT_CAPACITY) return Buffer.from(bytes);
    const buffer = this.spareInputs.pop() ?? Buffer.allocUnsafeSlow(INPUT_CAPACITY);
    bytes.copy(buffer);
    return buffer.subarray(0, bytes.length);
  }

  private recycleInput(input: Buffer): void {
    if (
      input.buffer.byteLength === INPUT_CAPACITY &&
      this.spareInputs.length < (AHEAD_PER_THREAD + 2) * this.limit + 4
    ) {
      this.spareInputs.push(Buffer.from(input.buffer, input.byteOffset, INPUT_CAPACITY));
    }
  }

  /**
   * Gives back a chunk this stream pushed, once the reader is completely done with it (no copy or
   * view of it kept anywhere): its memory is reused for a later piece. Anything else is ignored.
   */
  release(chunk: Buffer): void {
    const memory = chunk.buffer as ArrayBuffer;
    if (!this.lent.has(memory)) {
      if (this.sequential instanceof IsalGunzip) this.sequential.release(chunk);
      return;
    }
    this.lent.delete(memory);
    // Room for every buffer that can be out at once (pieces ahead, the readable queue, the reader's
    // current chunk), so none is dropped and allocated again.
    if (this.spareOutputs.length < (AHEAD_PER_THREAD + 2) * this.limit + 4)
      this.spareOutputs.push(Buffer.from(memory));
  }

  /** No mark in sight: the rest of the stream is read sequentially, starting with this input. */
  private giveUp(): void {
    this.unmarkedQueued = true;
    this.pieces.push({
      input: Buffer.from(this.acc.subarray(this.start, this.length)),
      final: false,
      unmarked: true,
      result: { ok: false, consumed: 0, written: 0, crc: 0 },
    });
    this.start = this.length = this.scanned = 0;
  }

  /** Starts pieces while there are free slots, then lets held input in when there is room. */
  private pump(): void {
    if (this.destroyed || this.sequential) return;
    // Only the first few undelivered pieces may hold an output buffer: runs of zeros compress to
    // hundreds of pieces per input chunk, and each would otherwise take 4 MiB while it waits.
    const ahead = Math.min(this.pieces.length, AHEAD_PER_THREAD * this.limit);
    for (let i = 0; i < ahead && this.running < this.limit; i++) {
      const piece = this.pieces[i]!;
      if (piece.result || piece.running) continue;
      piece.running = true;
      this.running++;
      const output = this.spareOutputs.pop() ?? Buffer.allocUnsafeSlow(PIECE_CAPACITY);
      piece.output = output;
      this.busy.begin();
      this.inflatePiece(piece.input, piece.final, output).then(
        (result) => {
          this.busy.end();
          this.running--;
          piece.running = false;
          piece.result = result;
          if (!result.ok) this.spareOutputs.push(output);
          this.deliver();
        },
        (error: Error) => {
          this.busy.end();
          this.running--;
          this.destroy(error);
        },
      );
    }
    // New input only while few pieces wait, and never past one without a mark (it goes sequential).
    const waiting = this.pieces.length;
    if (this.heldWrite && waiting <= AHEAD_PER_THREAD * this.limit && !this.unmarkedQueued) {
      const release = this.heldWrite;
      this.heldWrite = undefined;
      release();
    }
  }

  /** Pushes finished pieces in order while the reader wants more, then starts more pieces. */
  private deliver(): void {
    while (!this.destroyed && !this.sequential && this.pieces.length > 0) {
      const piece = this.pieces[0]!;
      if (!piece.result) break;
      if (!piece.result.ok) {
        this.switchToSequential();
        return;
      }
      if (!this.wantsData) break;
      const data = piece.output!.subarray(0, piece.result.written);
      this.pieces.shift();
      // Delivered in order, so no fallback can need its input again.
      if (!piece.final) this.recycleInput(piece.input);
      this.lent.add(data.buffer as ArrayBuffer);
      // Each piece's CRC-32 came from the thread that inflated it (an addon built before pieces
      // reported one leaves it to this thread).
      this.crc =
        typeof piece.result.crc === 'number'
          ? crc32Combine(this.crc, piece.result.crc, data.length)
          : zlib.crc32(data, this.crc);
      this.size = (this.size + data.length) % 0x1_0000_0000;
      this.remember(data);
      if (data.length > 0) this.wantsData = this.push(data);
      if (piece.final) {
        this.finish(piece.input.subarray(piece.result.consumed));
        return;
      }
    }
    this.pump();
  }

  private remember(data: Buffer): void {
    if (data.length >= WINDOW) {
      data.copy(this.window, 0, data.length - WINDOW);
      this.windowFill = WINDOW;
      return;
    }
    const keep = Math.min(this.windowFill, WINDOW - data.length);
    this.window.copy(this.window, 0, this.windowFill - keep, this.windowFill);
    data.copy(this.window, keep);
    this.windowFill = keep + data.length;
  }

  /** The final piece inflated: what follows it must be exactly the 8-byte trailer. */
  private finish(trailer: Buffer): void {
    const callback = this.heldFinal;
    this.heldFinal = undefined;
    try {
      if (trailer.length < 8) throw new BundleError('gzip data is truncated (trailer missing)', GUNZIP_HINT);
      if (trailer.length > 8) throw afterMember(trailer.subarray(8));
      if (trailer.readUInt32LE(0) !== this.crc >>> 0)
        throw new BundleError('gzip data is corrupt: CRC-32 of the content does not match', GUNZIP_HINT);
      if (trailer.readUInt32LE(4) !== this.size)
        throw new BundleError('gzip data is corrupt: content length does not match the trailer', GUNZIP_HINT);
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    this.push(null);
    callback?.();
  }

  /**
   * The first undelivered piece did not inflate alone: the sequential reader takes over from its
   * first byte, primed with the output so far. Later pieces' results are dropped.
   */
  private switchToSequential(): void {
    const sequential = createSequentialGunzip({
      dictionary: Buffer.from(this.window.subarray(0, this.windowFill)),
      crc: this.crc,
      size: this.size,
    });
    this.sequential = sequential;
    sequential.on('data', (data: Buffer) => {
      if (!this.push(data)) sequential.pause();
    });
    sequential.on('error', (error: Error) => this.destroy(error));
    sequential.on('end', () => {
      const callback = this.heldFinal;
      this.heldFinal = undefined;
      this.push(null);
      callback?.();
    });
    const pieces = this.pieces.splice(0);
    const ended = pieces.some((p) => p.final);
    for (const piece of pieces) sequential.write(piece.input);
    if (!ended && this.length > this.start)
      sequential.write(Buffer.from(this.acc.subarray(this.start, this.length)));
    this.acc = Buffer.alloc(0);
    this.start = this.length = this.scanned = 0;
    if (ended) sequential.end();
    const release = this.heldWrite;
    this.heldWrite = undefined;
    release?.();
  }

  private writeSequential(chunk: Buffer, callback: (error?: Error | null) => void): void {
    if (this.sequential!.write(chunk)) callback();
    else this.sequential!.once('drain', () => callback());
  }
}

export function createParallelGunzip(): ParallelGunzip {
  return new ParallelGunzip();
}
