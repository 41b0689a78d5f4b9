// Each pipeline stage measured alone on in-memory data: the first --sample-mib of the image's data
// is read once (the read+extents stage), framed by the real tarStream() into a tar stream held in
// memory, and every later stage runs the project's own code over the previous stage's output.
// Outputs are checked (digest, lengths) outside the timed regions, so a broken stage cannot
// post a good number.
//
// What a stage keeps for the next one is copied into an arena whose pages were touched before the
// clock started: on virtual machines a first touch of fresh memory can cost more than the work
// itself (~6 ms per MiB was seen here), and the real pipeline drops each chunk once it has passed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { planImage } from '../bundle/image-plan.js';
import type { PartSink } from '../parts/part-sink.js';
import { PartSplitter } from '../parts/part-splitter.js';
import { tarStream, type TarStreamResult } from '../bundle/tar-stream.js';
import { createAesDecryptor, createAesEncryptor } from '../codec/aes-cbc.js';
import {
  createCompressor,
  createDecompressor,
  LEVEL_RANGE,
  type CompressionCodec,
} from '../codec/compression.js';
import { BundleError } from '../errors.js';
import { memberHeaderBlocks, RECORD, type MemberInfo } from '../format/tar-header.js';
import { PART_SIZE } from '../format/part-name.js';
import { sha1HexSync as sha1Of } from '../io/async-sha1.js';
import type { Extent } from '../io/extents.js';
import { READ_SIZE } from '../bundle/tar-stream.js';
import { BufferRing } from '../bundle/buffer-ring.js';
import { compressThrough, READ_BUFFERS } from '../bundle/feed.js';
import { ImageWriter } from '../restore/image-writer.js';
import { mbPerSecond, timed, type Timing } from './measure.js';
import type { BenchReport, StageName, StageResult } from './report.js';
import { formatBytes } from '../format-bytes.js';

/** Chunks between compressor, cipher and splitter (the codecs emit at most 64 KiB at a time). */
const STREAM_CHUNK = 64 * 1024;

export interface CompressRun {
  readonly codec: CompressionCodec;
  readonly level: number;
}

export interface StageOptions {
  readonly imagePath: string;
  readonly sampleBytes: number;
  readonly compress: readonly CompressRun[];
  readonly threads: number;
  /** Private directory for the write stage's file. */
  readonly workDir: string;
  readonly signal?: AbortSignal;
  readonly onStage?: (s: StageResult) => void;
  readonly onProgress?: (line: string) => void;
}

export interface StagesResult {
  readonly image: Omit<BenchReport['image'], 'generated'>;
  readonly sample: BenchReport['sample'];
  readonly stages: StageResult[];
}

interface Piece {
  readonly offset: number;
  readonly data: Buffer;
}

/** Memory whose pages are already mapped: writes into it cost a copy, not page faults. */
function arena(bytes: number): Buffer {
  return Buffer.allocUnsafe(bytes).fill(0);
}

/** `buf` as consecutive views of at most `size` bytes: the chunk sizes the pipeline passes. */
function slices(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < buf.length; at += size) out.push(buf.subarray(at, Math.min(at + size, buf.length)));
  return out;
}

/** `buf` cut into views of the given lengths, in turn: the tar stream as tarStream() yielded it. */
async function* views(buf: Buffer, lengths: readonly number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (const n of lengths) {
    yield buf.subarray(at, at + n);
    at += n;
  }
}

/** Counts what a pipeline produces and, given an arena, copies it there. */
class Collector extends Writable {
  bytes = 0;

  constructor(private readonly into?: Buffer) {
    super({ highWaterMark: 4 * READ_SIZE });
  }

  get data(): Buffer {
    if (!this.into) throw new Error('bench: this collector keeps nothing');
    return this.into.subarray(0, this.bytes);
  }

  /** Counts (and copies) one chunk; throws when the arena is too small. */
  take(chunk: Buffer): void {
    if (this.into) {
      if (this.bytes + chunk.length > this.into.length)
        throw new Error('bench: a stage produced more output than its bound');
      chunk.copy(this.into, this.bytes);
    }
    this.bytes += chunk.length;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    try {
      this.take(chunk);
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}

/** A PartSink that stores nothing: split+hash is measured without the disk. */
const nullSink: PartSink = {
  description: 'memory',
  openPart: async () => ({ write: async () => undefined, close: async () => undefined }),
  commit: async () => 'memory',
  abort: async () => undefined,
};

function firstBytes(extents: readonly Extent[], limit: number): Extent[] {
  const out: Extent[] = [];
  let left = limit;
  for (const e of extents) {
    if (left <= 0) break;
    const length = Math.min(e.length, left);
    out.push({ offset: e.offset, length });
    left -= length;
  }
  return out;
}

/** Reads `extents` into `into` with tarStream()'s 1 MiB reads; returns where each piece landed. */
async function readPieces(handle: FileHandle, extents: readonly Extent[], into: Buffer): Promise<Piece[]> {
  const pieces: Piece[] = [];
  let at = 0;
  for (const e of extents) {
    for (let pos = e.offset; pos < e.offset + e.length;) {
      const want = Math.min(READ_SIZE, e.offset + e.length - pos);
      const data = into.subarray(at, at + want);
      for (let got = 0; got < want;) {
        const { bytesRead } = await handle.read(data, got, want - got, pos + got);
        if (bytesRead === 0)
          throw new BundleError(`the image shrank while it was being read (at ${pos + got})`);
        got += bytesRead;
      }
      pieces.push({ offset: pos, data });
      pos += want;
      at += want;
    }
  }
  return pieces;
}

/**
 * The sample seen through the one FileHandle method tarStream() calls, read(buf, off, len, pos),
 * so that the tar stage measures framing and hashing, not the disk.
 */
function memoryImage(pieces: readonly Piece[]): FileHandle {
  let at = 0;
  const read = async (buffer: Buffer, offset: number, length: number, position: number) => {
    if (at >= pieces.length || position < pieces[at]!.offset) at = 0;
    while (at < pieces.length && position >= pieces[at]!.offset + pieces[at]!.data.length) at++;
    const piece = pieces[at];
    if (!piece || position < piece.offset) return { bytesRead: 0, buffer };
    const from = position - piece.offset;
    const bytesRead = piece.data.copy(buffer, offset, from, Math.min(piece.data.length, from + length));
    return { bytesRead, buffer };
  };
  return { read } as unknown as FileHandle;
}

/** Room for compressed output: deflate and zstd expand incompressible data by well under 1%. */
function compressBound(bytes: number): number {
  return Math.ceil(bytes * 1.01) + 2 * READ_SIZE;
}

async function run(
  chunks: readonly Buffer[],
  stage: Duplex,
  sink: Writable,
  signal?: AbortSignal,
): Promise<void> {
  await pipeline(Readable.from(chunks, { objectMode: false }), stage, sink, ...(signal ? [{ signal }] : []));
}

export async function measureStages(opts: StageOptions): Promise<StagesResult> {
  const stages: StageResult[] = [];
  const progress = opts.onProgress ?? (() => undefined);
  let tarBytes = 0;
  const record = (
    stage: StageName,
    t: Timing,
    inputBytes: number,
    outputBytes: number,
    extra: Partial<Pick<StageResult, 'codec' | 'level' | 'ratio' | 'note'>> = {},
  ): void => {
    const s: StageResult = {
      stage,
      ...(extra.codec ? { codec: extra.codec, level: extra.level } : {}),
      seconds: t.seconds,
      cpuSeconds: t.cpuSeconds,
      cpuPercent: t.seconds > 0 ? (100 * t.cpuSeconds) / t.seconds : 0,
      ...(t.waitSeconds !== undefined
        ? { cpuWaitPercent: t.seconds > 0 ? (100 * t.waitSeconds) / t.seconds : 0 }
        : {}),
      inputBytes,
      outputBytes,
      mbPerSecond: mbPerSecond(inputBytes, t.seconds),
      dataMbPerSecond: mbPerSecond(tarBytes || inputBytes, t.seconds),
      ...(extra.ratio !== undefined ? { ratio: extra.ratio } : {}),
      ...(extra.note ? { note: extra.note } : {}),
    };
    stages.push(s);
    opts.onStage?.(s);
  };
  const checkAbort = (): void => opts.signal?.throwIfAborted();

  // read+extents: the real planImage() on the whole image, then 1 MiB reads of the sample.
  progress(`Reading up to ${formatBytes(opts.sampleBytes)} of data from ${opts.imagePath}...`);
  const handle = await fs.promises.open(opts.imagePath, 'r');
  let plan: Awaited<ReturnType<typeof planImage>>;
  let sampleExtents: Extent[];
  let pieces: Piece[];
  let readTiming: Timing;
  let extentSeconds: number;
  try {
    const planned = await timed(() => planImage(handle, opts.imagePath, 'fs'));
    plan = planned.value;
    extentSeconds = planned.seconds;
    if (plan.size === 0) throw new BundleError(`the image ${opts.imagePath} is empty: nothing to measure`);
    if (plan.dataBytes === 0)
      throw new BundleError(`the image ${opts.imagePath} holds no data (only holes): nothing to measure`);
    sampleExtents = firstBytes(plan.extents, opts.sampleBytes);
    const sampleArena = arena(sampleExtents.reduce((s, e) => s + e.length, 0));
    const read = await timed(() => readPieces(handle, sampleExtents, sampleArena));
    pieces = read.value;
    readTiming = {
      seconds: planned.seconds + read.seconds,
      cpuSeconds: planned.cpuSeconds + read.cpuSeconds,
      ...(planned.waitSeconds !== undefined && read.waitSeconds !== undefined
        ? { waitSeconds: planned.waitSeconds + read.waitSeconds }
        : {}),
    };
  } finally {
    await handle.close();
  }
  const sampleData = sampleExtents.reduce((s, e) => s + e.length, 0);
  const member: MemberInfo = plan.sparseMap
    ? { name: 'bench.img', mode: plan.mode, mtime: plan.mtime, size: plan.size, sparseMap: sampleExtents }
    : { name: 'bench.img', mode: plan.mode, mtime: plan.mtime, size: sampleData };
  record('read+extents', readTiming, sampleData, sampleData, {
    note: `extents ${extentSeconds.toFixed(3)} s (${plan.extents.length}, whole image); reads may come from the page cache`,
  });
  checkAbort();

  // tar: the real tarStream() over the in-memory sample (it hashes as it frames: SHA-1 included).
  progress('Measuring tar, SHA-1...');
  const tarResult: TarStreamResult = { digest: '', length: 0 };
  const tarSink = new Collector(arena(memberHeaderBlocks(member).length + sampleData + 512 + RECORD));
  // Read buffers from a ring, as bundle-image reads them; each chunk's length is kept, so that the
  // compressor is later fed the very chunks bundle-image feeds it.
  const ring = new BufferRing(READ_BUFFERS, READ_SIZE);
  const tarChunkLengths: number[] = [];
  const tar = await timed(async () => {
    const chunks = tarStream(memoryImage(pieces), member, sampleExtents, tarResult, undefined, () =>
      ring.acquire(),
    );
    for await (const c of chunks) {
      tarSink.take(c);
      tarChunkLengths.push(c.length);
      ring.release(c, Promise.resolve());
    }
  });
  const tarData = tarSink.data;
  tarBytes = tarData.length;
  if (tarBytes !== tarResult.length) throw new Error('bench: tar stream length mismatch');
  record('tar', tar, sampleData, tarBytes, { note: 'tarStream() hashes as it frames: includes SHA-1' });
  checkAbort();

  const sha = await timed(async () => sha1Of(tarData));
  if (sha.value !== tarResult.digest) throw new Error('bench: SHA-1 of the tar stream differs between runs');
  record('sha1', sha, tarBytes, 20);
  checkAbort();

  // compress: every codec/level, driven by bundle-image's own compressThrough() with the chunks
  // tarStream() yielded (header, 1 MiB reads, trailer); one output per codec is kept (copied out
  // of the shared arena after the clock stopped) for encrypt and inflate.
  const kept = new Map<CompressionCodec, { level: number; data: Buffer }>();
  const keepLevel = new Map<CompressionCodec, number>();
  for (const { codec, level } of opts.compress) {
    const best = keepLevel.get(codec);
    const def = LEVEL_RANGE[codec].default;
    if (best === undefined || Math.abs(level - def) < Math.abs(best - def)) keepLevel.set(codec, level);
  }
  const compressArena = arena(compressBound(tarBytes));
  for (const { codec, level } of opts.compress) {
    progress(`Measuring compress ${codec}:${level}...`);
    const sink = new Collector(compressArena);
    const compressor = createCompressor({ codec, level, threads: opts.threads });
    const t = await timed(() =>
      compressThrough(views(tarData, tarChunkLengths), compressor, [sink], {
        ...(opts.signal ? { signal: opts.signal } : {}),
      }),
    );
    if (keepLevel.get(codec) === level) kept.set(codec, { level, data: Buffer.from(sink.data) });
    record('compress', t, tarBytes, sink.bytes, {
      codec,
      level,
      ratio: sink.bytes / tarBytes,
      note: `${opts.threads} thread(s)`,
    });
    checkAbort();
  }

  // encrypt, split+hash, decrypt: on the compressed stream a bundle would carry (gzip first), in
  // the chunk sizes the pipeline uses: 64 KiB from the compressor, 10 MiB parts into decryption.
  const carried = kept.get('gzip') ?? kept.get('zstd');
  if (carried) {
    const codec: CompressionCodec = kept.has('gzip') ? 'gzip' : 'zstd';
    const compressedBytes = carried.data.length;
    const on = `on the ${codec}:${carried.level} output`;
    progress('Measuring encrypt, split+hash, decrypt...');
    const key = crypto.randomBytes(16);
    const iv = crypto.randomBytes(16);
    const encSink = new Collector(arena(compressedBytes + 16));
    const enc = await timed(() =>
      run(slices(carried.data, STREAM_CHUNK), createAesEncryptor(key, iv), encSink, opts.signal),
    );
    record('encrypt', enc, compressedBytes, encSink.bytes, { note: `AES-128-CBC ${on}` });
    checkAbort();

    const splitter = new PartSplitter(nullSink);
    const split = await timed(() =>
      pipeline(
        Readable.from(slices(encSink.data, STREAM_CHUNK), { objectMode: false }),
        splitter,
        ...(opts.signal ? [{ signal: opts.signal }] : []),
      ),
    );
    const partBytes = splitter.parts.reduce((s, p) => s + p.size, 0);
    if (partBytes !== encSink.bytes || splitter.parts.length !== Math.ceil(encSink.bytes / PART_SIZE))
      throw new Error('bench: split+hash lost or added bytes');
    record('split+hash', split, encSink.bytes, partBytes, {
      note: `${splitter.parts.length} part(s) of 10 MiB, SHA-1 and MD5 each`,
    });
    checkAbort();

    const decSink = new Collector();
    const dec = await timed(() =>
      run(slices(encSink.data, PART_SIZE), createAesDecryptor(key, iv), decSink, opts.signal),
    );
    if (decSink.bytes !== compressedBytes) throw new Error('bench: decryption changed the length');
    record('decrypt', dec, encSink.bytes, decSink.bytes, { note: 'AES-128-CBC, 10 MiB parts in' });
    checkAbort();
  }

  // inflate: each codec's kept output back to the tar stream (into the compress arena, which is
  // larger than the tar stream), checked against its digest.
  for (const [codec, { level, data }] of kept) {
    progress(`Measuring inflate ${codec}...`);
    const sink = new Collector(compressArena);
    const t = await timed(() =>
      // As a restore reads it: the digest below is checked, so zstd skips its own checksum there too.
      run(
        slices(data, STREAM_CHUNK),
        createDecompressor(codec, { outputDigestChecked: true }),
        sink,
        opts.signal,
      ),
    );
    if (sink.bytes !== tarBytes || sha1Of(sink.data) !== tarResult.digest)
      throw new Error(`bench: inflating ${codec} did not give back the tar stream`);
    record('inflate', t, data.length, tarBytes, {
      codec,
      level,
      note: `of the ${codec}:${level} output`,
    });
    checkAbort();
  }
  kept.clear();

  // write: the sample's data into a file as unbundle writes it (holes kept; page cache, no fsync).
  progress('Measuring write...');
  const writeDir = await fs.promises.mkdtemp(path.join(opts.workDir, 'write-'));
  const writer = new ImageWriter(writeDir, member);
  const written = await timed(async () => {
    await writer.open();
    try {
      for (const p of pieces) await writer.write(p.offset, p.data);
      return await writer.commit();
    } catch (err) {
      await writer.discard();
      throw err;
    }
  });
  const st = await fs.promises.stat(written.value);
  await fs.promises.rm(writeDir, { recursive: true, force: true });
  record('write', written, sampleData, writer.bytesWritten, {
    note: `sparse file, ${formatBytes(st.blocks * 512)} allocated; page cache, no fsync (as unbundle)`,
  });

  return {
    image: {
      path: opts.imagePath,
      size: plan.size,
      dataBytes: plan.dataBytes,
      extents: plan.extents.length,
      sparse: plan.sparseMap !== undefined,
    },
    sample: { dataBytes: sampleData, tarBytes, extents: sampleExtents.length, digest: tarResult.digest },
    stages,
  };
}
