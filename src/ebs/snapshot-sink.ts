// The image-sink contract (data arrives in ascending offsets, everything never written is a hole)
// turned into 512 KiB snapshot blocks: data is gathered into whole blocks, a partly written block
// is zero-filled, and runs of hole blocks are handed over as zero ranges without a buffer. At
// most in-flight + a few (the writer's ready-ahead queue, the block being gathered) buffers exist. The snapshot is started only when the first block is
// ready, so a check of the image's head (the boot sector) can refuse before anything is created.
import type { ImageSink } from '../disk/image-sink.js';
import type { Reporter } from '../events.js';
import { isAllZero } from '../io/zero-scan.js';
import { BLOCK_SIZE } from './connection.js';
import type { SnapshotWriter } from './snapshot-writer.js';

export interface SnapshotSinkOptions {
  /** Image size in bytes: the blocks after it up to the volume's end are zeros. */
  readonly imageSize: number;
  /** Sees block 0 (zeros if the image starts with a hole) before the snapshot is started. */
  readonly checkHead?: (block0: Buffer) => void;
  /** Report upload progress (off when the restore reports its own). */
  readonly progress?: boolean;
  readonly out: Reporter;
}

export class SnapshotSink implements ImageSink {
  bytesWritten = 0;
  /** Next image offset not yet handed over. */
  private pos = 0;
  private current: Buffer | undefined;
  private readonly free: Buffer[] = [];
  private started = false;

  constructor(
    readonly writer: SnapshotWriter,
    private readonly opts: SnapshotSinkOptions,
  ) {}

  get path(): string {
    return this.writer.snapshotId ?? 'a new EBS snapshot';
  }

  async open(): Promise<void> {
    // The snapshot is started with the first block (see the file comment).
  }

  private async ensureStarted(block0: Buffer): Promise<void> {
    if (this.started) return;
    this.opts.checkHead?.(block0);
    this.started = true;
    await this.writer.start();
  }

  private take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(BLOCK_SIZE);
  }

  private async emit(): Promise<void> {
    const block = this.current!;
    this.current = undefined;
    const index = this.pos / BLOCK_SIZE - 1;
    if (index === 0) await this.ensureStarted(block);
    await this.writer.block(index, block, isAllZero(block), (b) => this.free.push(b));
  }

  /** Zeros from `pos` up to `target`. */
  private async advanceTo(target: number): Promise<void> {
    while (this.pos < target) {
      const blockStart = this.pos - (this.pos % BLOCK_SIZE);
      const blockEnd = blockStart + BLOCK_SIZE;
      if (this.current === undefined && target >= blockEnd) {
        // Whole hole blocks (pos is block-aligned whenever no block is being gathered).
        const endBlock = Math.floor(target / BLOCK_SIZE);
        if (this.pos === 0) await this.ensureStarted(Buffer.alloc(BLOCK_SIZE));
        await this.writer.zeroRange(this.pos / BLOCK_SIZE, endBlock);
        this.pos = endBlock * BLOCK_SIZE;
        continue;
      }
      this.current ??= this.take();
      const upto = Math.min(target, blockEnd);
      this.current.fill(0, this.pos - blockStart, upto - blockStart);
      this.pos = upto;
      if (this.pos === blockEnd) await this.emit();
    }
  }

  async write(offset: number, chunk: Buffer): Promise<void> {
    if (offset < this.pos) throw new Error(`write at ${offset} after ${this.pos}`);
    await this.advanceTo(offset);
    let at = 0;
    while (at < chunk.length) {
      const blockStart = this.pos - (this.pos % BLOCK_SIZE);
      this.current ??= this.take();
      const n = Math.min(chunk.length - at, blockStart + BLOCK_SIZE - this.pos);
      chunk.copy(this.current, this.pos - blockStart, at, at + n);
      at += n;
      this.pos += n;
      this.bytesWritten += n;
      if (this.pos % BLOCK_SIZE === 0) await this.emit();
    }
    if (this.opts.progress)
      this.opts.out.progress({ phase: 'to-ebs', done: this.pos, total: this.opts.imageSize, unit: 'bytes' });
  }

  /** Sends the last blocks and completes the snapshot; returns its id. */
  async commit(): Promise<string> {
    await this.advanceTo(this.opts.imageSize);
    if (this.current !== undefined) await this.advanceTo(this.pos - (this.pos % BLOCK_SIZE) + BLOCK_SIZE);
    if (!this.started) await this.ensureStarted(Buffer.alloc(BLOCK_SIZE));
    await this.writer.zeroRange(this.writer.nextBlock, this.writer.volumeBlocks);
    await this.writer.complete();
    if (this.opts.progress) this.opts.out.endProgress();
    return this.writer.snapshotId!;
  }

  /** Lets the blocks in flight settle; the pending snapshot stays for --resume. */
  async discard(): Promise<void> {
    await this.writer.drain().catch(() => undefined);
  }
}
