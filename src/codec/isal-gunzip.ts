// Sequential gzip reader on ISA-L's streaming inflate (native/isal_stream.c), for members without
// amibundle's block marks: one `gzip -9` stream, as every ec2-ami-tools bundle is. igzip decodes
// about four times as fast as zlib, and it runs on libuv's threadpool, so the main thread decrypts,
// parses the tar stream and queues the writes while it works: the restore uses both cores. The
// same strictness as SingleMemberGunzip: exactly one member, CRC-32 and length checked, nothing
// after it. Without the addon or libisal.so.2, createSequentialGunzip() gives the zlib reader.
//
// AMIBUNDLE_INFLATE chooses a reader for tests and comparisons (never needed otherwise):
// 'zlib' (or 'sequential') forces Node's zlib, 'isal' forces this reader without trying the
// parallel one first; unset, gzip goes parallel where the marks allow, then here, then zlib.

import { Duplex } from 'node:stream';
import { BundleError } from '../errors.js';
import { BusyClock } from '../io/busy-clock.js';
import { nativeAddon, type NativeAddon } from '../io/native.js';
import {
  afterMember,
  GUNZIP_HINT,
  gzipHeaderLength,
  MAX_GZIP_HEADER,
  SingleMemberGunzip,
  type GunzipResume,
} from './single-member-gunzip.js';

/** Output per threadpool round trip: large, so a 1 GiB image costs about a thousand of them. */
const OUTPUT_CHUNK = 1024 * 1024;
/** Compressed input gathered before a round trip (the decryptor hands over 64 KiB at a time). */
const INPUT_HIGH_WATER = 1024 * 1024;
/** Output buffers kept for reuse: those in flight, queued for the reader, and the reader's own. */
const SPARE_OUTPUTS = 6;
/**
 * Input kept from earlier round trips: igzip's bit buffer (8 bytes) and its partial-header buffer
 * (ISAL_DEF_MAX_HDR_SIZE, 328 bytes) may hold bytes past the end of the stream.
 */
const READ_AHEAD_BYTES = 512;

type Native = Required<Pick<NativeAddon, 'inflateStreamCreate' | 'inflateStreamRun'>>;

/** The reader AMIBUNDLE_INFLATE asks for, if any (test and comparison use only). */
export function forcedInflate(): 'zlib' | 'isal' | undefined {
  const v = process.env['AMIBUNDLE_INFLATE'];
  if (v === 'zlib' || v === 'sequential') return 'zlib';
  return v === 'isal' ? 'isal' : undefined;
}

function isalNative(): Native | undefined {
  const addon = nativeAddon();
  return addon?.inflateStreamCreate && addon.inflateStreamRun ? (addon as Native) : undefined;
}

/** Whether ISA-L's streaming inflate is loaded here. */
export function canInflateWithIsal(): boolean {
  return isalNative() !== undefined;
}

/** Duplex stream: one gzip member in, its uncompressed bytes out, inflated by igzip off the main thread. */
export class IsalGunzip extends Duplex {
  private readonly native: Native;
  private readonly stream: object;
  private state: 'header' | 'body' | 'trailer' = 'header';
  private header = Buffer.alloc(0);
  /** The last bytes given to igzip: where the trailer starts when igzip read ahead into them. */
  private recent = Buffer.alloc(0);
  private tail = Buffer.alloc(0);
  private crc = 0;
  private size = 0;
  private wantsData = true;
  private readWaiter: (() => void) | undefined;
  private readonly spareOutputs: Buffer[] = [];
  private readonly lent = new WeakSet<ArrayBuffer>();
  private readonly busy = new BusyClock();

  /** With `resume`, the input starts inside the deflate data (no header) where another reader stopped. */
  constructor(resume?: GunzipResume) {
    super({ readableHighWaterMark: OUTPUT_CHUNK, writableHighWaterMark: INPUT_HIGH_WATER });
    const native = isalNative();
    if (!native) throw new RangeError('the ISA-L gzip reader needs the native addon and libisal.so.2');
    this.native = native;
    this.stream = native.inflateStreamCreate(
      resume && resume.dictionary.length > 0 ? resume.dictionary : null,
      resume ? resume.crc >>> 0 : 0,
    );
    if (resume) {
      this.state = 'body';
      this.crc = resume.crc >>> 0;
      this.size = resume.size;
    }
  }

  /**
   * Gives back a chunk this stream pushed, once the reader is completely done with it: its memory
   * is reused (fresh memory costs a page fault per 4 KiB on first touch). Anything else is ignored.
   */
  release(chunk: Buffer): void {
    const memory = chunk.buffer as ArrayBuffer;
    if (!this.lent.has(memory)) return;
    this.lent.delete(memory);
    if (this.spareOutputs.length < SPARE_OUTPUTS) this.spareOutputs.push(Buffer.from(memory));
  }

  /** Wall seconds with an igzip call under way. */
  get busySeconds(): number {
    return this.busy.seconds;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.feed(chunk).then(() => callback(), callback);
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    const input = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.feed(input).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.end_().then(() => callback(), callback);
  }

  override _read(): void {
    this.wantsData = true;
    const waiter = this.readWaiter;
    this.readWaiter = undefined;
    waiter?.();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // A round trip under way finishes on its own; feed() sees `destroyed` and stops.
    this.readWaiter?.();
    callback(error);
  }

  private async feed(input: Buffer): Promise<void> {
    if (this.state === 'header') {
      const header = this.header.length > 0 ? Buffer.concat([this.header, input]) : input;
      const length = gzipHeaderLength(header);
      if (length < 0) {
        if (header.length > MAX_GZIP_HEADER) throw new BundleError('gzip header is too long', GUNZIP_HINT);
        this.header = Buffer.from(header);
        return;
      }
      this.header = Buffer.alloc(0);
      input = header.subarray(length);
      this.state = 'body';
    }
    if (this.state === 'body') await this.inflate(input);
    else this.addTail(input);
  }

  /** Runs igzip over `input` (possibly empty: to drain what it holds) until it is used up. */
  private async inflate(input: Buffer): Promise<void> {
    let at = 0;
    let outputFull = false;
    while (this.state === 'body' && (at < input.length || outputFull)) {
      if (!this.wantsData) await new Promise<void>((resolve) => (this.readWaiter = resolve));
      if (this.destroyed) return;
      const output = this.spareOutputs.pop() ?? Buffer.allocUnsafeSlow(OUTPUT_CHUNK);
      const piece = input.subarray(at);
      const r = await this.busy.time(() => this.native.inflateStreamRun(this.stream, piece, output));
      if (this.destroyed) return;
      if (r.error < 0) throw new BundleError(`gzip data is corrupt (igzip error ${r.error})`, GUNZIP_HINT);
      at += r.consumed;
      outputFull = r.written === output.length;
      this.crc = r.crc >>> 0;
      if (r.written > 0) {
        const data = output.subarray(0, r.written);
        this.size = (this.size + r.written) % 0x1_0000_0000;
        this.lent.add(output.buffer as ArrayBuffer);
        this.wantsData = this.push(data);
      } else this.spareOutputs.push(output);
      if (r.finished) {
        this.state = 'trailer';
        const seen = Buffer.concat([this.recent, piece]);
        this.addTail(seen.subarray(seen.length - r.unused));
        return;
      }
      if (r.consumed === 0 && r.written === 0) {
        // No progress with input left: igzip wants more than this stream will give.
        if (at < input.length)
          throw new BundleError('gzip data is corrupt (igzip made no progress)', GUNZIP_HINT);
        break;
      }
      this.remember(piece.subarray(0, r.consumed));
    }
  }

  private remember(used: Buffer): void {
    if (used.length >= READ_AHEAD_BYTES)
      this.recent = Buffer.from(used.subarray(used.length - READ_AHEAD_BYTES));
    else if (used.length > 0) this.recent = Buffer.concat([this.recent, used]).subarray(-READ_AHEAD_BYTES);
  }

  private addTail(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.tail = Buffer.concat([this.tail, chunk]);
    if (this.tail.length > 8) throw afterMember(this.tail.subarray(8));
  }

  private async end_(): Promise<void> {
    if (this.state === 'header')
      throw new BundleError(
        this.header.length === 0 ? 'gzip data is empty' : 'gzip data is truncated',
        GUNZIP_HINT,
      );
    if (this.state === 'body') await this.inflate(Buffer.alloc(0));
    if (this.destroyed) return;
    if (this.state === 'body') throw new BundleError('gzip data is truncated', GUNZIP_HINT);
    if (this.tail.length < 8) throw new BundleError('gzip data is truncated (trailer missing)', GUNZIP_HINT);
    if (this.tail.readUInt32LE(0) !== this.crc)
      throw new BundleError('gzip data is corrupt: CRC-32 of the content does not match', GUNZIP_HINT);
    if (this.tail.readUInt32LE(4) !== this.size)
      throw new BundleError('gzip data is corrupt: content length does not match the trailer', GUNZIP_HINT);
    this.push(null);
  }
}

/**
 * The sequential reader for a member (or the rest of one, with `resume`): igzip when it is loaded,
 * Node's zlib otherwise or when AMIBUNDLE_INFLATE=zlib.
 */
export function createSequentialGunzip(resume?: GunzipResume): IsalGunzip | SingleMemberGunzip {
  if (forcedInflate() !== 'zlib' && canInflateWithIsal()) return new IsalGunzip(resume);
  return new SingleMemberGunzip(resume);
}
