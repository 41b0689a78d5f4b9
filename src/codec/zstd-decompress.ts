// zstd decompression on a worker thread. zstd-napi's streaming calls are synchronous, so on the event
// loop they would serialise with everything else a restore does there (decryption, tar parsing,
// write dispatch); on their own thread they overlap. Input goes over in 1 MiB batches, output comes
// back in 1 MiB buffers that are transferred, not copied; the worker produces only while it holds
// credits, which the reader returns as it takes output, so memory stays bounded. Buffers the reader
// hands back with release() are reused by the worker (fresh memory costs page faults per 4 KiB).

import { Duplex } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { BundleError } from '../errors.js';
import { zstdBinding } from './zstd-binding.js';

const HINT = 'the bundle is damaged or was not made by amibundle with zstd; bundle the image again';
/** Bytes per output buffer and per input batch. */
export const ZSTD_OUTPUT_CHUNK = 1024 * 1024;
/**
 * Output buffers the worker may have out at once (the reader's unread output is at most this many).
 * Eight, with room for four in the readable buffer: the one worker is the restore's critical path,
 * and with four (one readable chunk) it waited on the reader's pace; eight restored a 1 GiB image
 * about 6% faster here for 4 MiB more memory.
 */
export const ZSTD_OUTPUT_CREDITS = 8;
/** Input batches sent but not yet consumed before writes are held back. */
const INPUT_IN_FLIGHT = 4;
/**
 * ZSTD_d_forceIgnoreChecksum (ZSTD_d_experimentalParam3 in zstd.h of the zstd that zstd-napi, pinned
 * exactly, vendors; it has no name in zstd-napi's DParameter). The checksum is still read, not
 * compared, so a truncated frame is still an error.
 */
const ZSTD_D_FORCE_IGNORE_CHECKSUM = 1002;

export interface ZstdDecompressorOptions {
  /**
   * Compare each frame's content checksum (XXH64 of its output); default true. A caller that
   * checks a stronger digest over every output byte may turn it off: a restore compares the
   * manifest's SHA-1 of the whole tar stream, and on the 1 GiB bench images XXH64 was about a sixth
   * of the one worker's time, which is the restore's critical path.
   */
  checkContentChecksum?: boolean;
}

type FromWorker =
  | { type: 'data'; buffer: ArrayBuffer; length: number }
  | { type: 'consumed'; buffer: ArrayBuffer }
  | { type: 'error'; message: string }
  | { type: 'end'; inFrame: boolean; sawFrame: boolean };

// CommonJS, evaluated as the worker's whole program (so it runs from src/ under the tests and from
// dist/ alike). One DCtx for the stream; standard frames one after another, each checked by zstd.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const binding = require(workerData.binding);
const CHUNK = workerData.chunk;
const dctx = new binding.DCtx();
if (!workerData.checkContentChecksum) dctx.setParameter(workerData.forceIgnoreChecksum, 1);
const spare = [];
const queue = [];
let credits = workerData.credits;
let out;
let inFrame = false, sawFrame = false, ending = false, ended = false, failed = false;
function run() {
  while (!failed && credits > 0 && queue.length > 0) {
    const input = queue[0];
    out = out || spare.pop() || Buffer.allocUnsafeSlow(CHUNK);
    let result;
    try {
      result = dctx.decompressStream(out, input.data.subarray(input.at));
    } catch (error) {
      failed = true;
      parentPort.postMessage({ type: 'error', message: error.message });
      return;
    }
    const [hint, produced, consumed] = result;
    // A call that moved nothing reports what the next frame needs; it says nothing of the last one.
    if (consumed > 0 || produced > 0) {
      sawFrame = true;
      inFrame = hint !== 0;
    }
    input.at += consumed;
    const full = produced === out.length;
    if (produced > 0) {
      parentPort.postMessage({ type: 'data', buffer: out.buffer, length: produced }, [out.buffer]);
      out = undefined;
      credits--;
    }
    // A full output buffer may mean more output is waiting inside zstd, unless the frame is done.
    if (input.at === input.data.length && (!full || hint === 0)) {
      queue.shift();
      // The batch's memory goes back to be filled again.
      parentPort.postMessage({ type: 'consumed', buffer: input.data.buffer }, [input.data.buffer]);
    }
  }
  // Once: credits and recycled buffers still arrive after the end, and each runs this again.
  if (!failed && ending && !ended && queue.length === 0) {
    ended = true;
    parentPort.postMessage({ type: 'end', inFrame, sawFrame });
  }
}
parentPort.on('message', (m) => {
  if (m.type === 'input') queue.push({ data: Buffer.from(m.buffer, 0, m.length), at: 0 });
  else if (m.type === 'credit') credits++;
  else if (m.type === 'recycle') spare.push(Buffer.from(m.buffer));
  else if (m.type === 'end') ending = true;
  run();
});
`;

/** Duplex stream: zstd frames in, their content out; truncation, garbage and bad checksums are errors. */
export class ZstdDecompressor extends Duplex {
  private readonly worker: Worker;
  private batch: Buffer = Buffer.allocUnsafeSlow(ZSTD_OUTPUT_CHUNK);
  private batchFill = 0;
  /** Input batches the worker has finished with, for reuse. */
  private readonly spareBatches: Buffer[] = [];
  private inFlight = 0;
  private heldWrite: (() => void) | undefined;
  private heldFinal: ((error?: Error | null) => void) | undefined;
  /** Credits owed to the worker for output pushed while the reader was full. */
  private owed = 0;
  private readonly lent = new WeakSet<ArrayBuffer>();
  private finished = false;
  /** The worker's busy milliseconds, kept when it ends (a terminated worker reports none). */
  private workerBusyMs: number | undefined;

  constructor(opts: ZstdDecompressorOptions = {}) {
    super({ readableHighWaterMark: 4 * ZSTD_OUTPUT_CHUNK, writableHighWaterMark: 64 * 1024 });
    this.worker = new Worker(WORKER, {
      eval: true,
      // The worker requires the binding itself; loading it here first turns its absence into one line.
      workerData: {
        binding: zstdBinding().file,
        chunk: ZSTD_OUTPUT_CHUNK,
        credits: ZSTD_OUTPUT_CREDITS,
        checkContentChecksum: opts.checkContentChecksum ?? true,
        forceIgnoreChecksum: ZSTD_D_FORCE_IGNORE_CHECKSUM,
      },
    });
    this.worker.on('message', (message: FromWorker) => this.onMessage(message));
    this.worker.on('error', (error) => this.destroy(error));
  }

  /**
   * Wall seconds the worker spent decompressing: its event loop's active time (each message is
   * handled synchronously there, so active means working).
   */
  get busySeconds(): number {
    return (this.workerBusyMs ?? this.workerActiveMs()) / 1000;
  }

  private workerActiveMs(): number {
    try {
      return this.worker.performance.eventLoopUtilization().active;
    } catch {
      return 0; // not started yet, or already gone
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let at = 0;
    while (at < chunk.length) {
      const n = chunk.copy(this.batch, this.batchFill, at);
      this.batchFill += n;
      at += n;
      if (this.batchFill === this.batch.length) this.sendBatch();
    }
    if (this.inFlight < INPUT_IN_FLIGHT) callback();
    else this.heldWrite = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.sendBatch();
    this.heldFinal = callback;
    this.worker.postMessage({ type: 'end' });
  }

  override _read(): void {
    if (this.owed > 0) {
      for (; this.owed > 0; this.owed--) this.worker.postMessage({ type: 'credit' });
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    void this.worker.terminate();
    callback(error);
  }

  /**
   * Gives back a chunk this stream pushed, once the reader is completely done with it (no view of
   * it kept anywhere): the worker reuses its memory. Anything else is ignored.
   */
  release(chunk: Buffer): void {
    const memory = chunk.buffer as ArrayBuffer;
    if (!this.lent.has(memory) || this.finished) return;
    this.lent.delete(memory);
    this.worker.postMessage({ type: 'recycle', buffer: memory }, [memory]);
  }

  private sendBatch(): void {
    if (this.batchFill === 0) return;
    const buffer = this.batch.buffer as ArrayBuffer;
    this.worker.postMessage({ type: 'input', buffer, length: this.batchFill }, [buffer]);
    this.inFlight++;
    this.batch = this.spareBatches.pop() ?? Buffer.allocUnsafeSlow(ZSTD_OUTPUT_CHUNK);
    this.batchFill = 0;
  }

  private onMessage(message: FromWorker): void {
    if (this.destroyed) return;
    switch (message.type) {
      case 'data': {
        this.lent.add(message.buffer);
        // The credit for this buffer goes back now if the reader wants more, else when it asks.
        if (this.push(Buffer.from(message.buffer, 0, message.length)))
          this.worker.postMessage({ type: 'credit' });
        else this.owed++;
        return;
      }
      case 'consumed': {
        this.inFlight--;
        this.spareBatches.push(Buffer.from(message.buffer));
        const release = this.heldWrite;
        this.heldWrite = undefined;
        release?.();
        return;
      }
      case 'error':
        this.destroy(new BundleError(`zstd data is corrupt (${message.message})`, HINT));
        return;
      case 'end': {
        if (this.finished) return;
        const callback = this.heldFinal;
        this.heldFinal = undefined;
        this.finished = true;
        this.workerBusyMs = this.workerActiveMs();
        void this.worker.terminate();
        if (!message.sawFrame) callback?.(new BundleError('zstd data is empty', HINT));
        else if (message.inFrame) callback?.(new BundleError('zstd data is truncated', HINT));
        else {
          this.push(null);
          callback?.();
        }
        return;
      }
    }
  }
}

export function createZstdDecompressor(opts: ZstdDecompressorOptions = {}): ZstdDecompressor {
  return new ZstdDecompressor(opts);
}
