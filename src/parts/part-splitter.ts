// Cuts the encrypted stream into 10 MiB parts as it flows, hashing each part (SHA-1 for the
// manifest, MD5 for S3) while its bytes pass: parts are never read back.
import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import { PART_SIZE } from '../format/part-name.js';
import type { PartDigests, PartSink, PartWriter } from './part-sink.js';

export class PartSplitter extends Writable {
  readonly parts: PartDigests[] = [];
  private writer: PartWriter | undefined;
  private sha1 = crypto.createHash('sha1');
  private md5 = crypto.createHash('md5');
  private size = 0;

  constructor(
    private readonly sink: PartSink,
    private readonly onPart?: (index: number, digests: PartDigests) => void,
    private readonly partSize = PART_SIZE,
  ) {
    super({ highWaterMark: 4, objectMode: false });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.take(chunk).then(() => done(), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.closePart().then(() => done(), done);
  }

  private async take(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (!this.writer) this.writer = await this.sink.openPart(this.parts.length);
      const piece = chunk.subarray(at, at + Math.min(chunk.length - at, this.partSize - this.size));
      this.sha1.update(piece);
      this.md5.update(piece);
      this.size += piece.length;
      at += piece.length;
      await this.writer.write(piece);
      if (this.size === this.partSize) await this.closePart();
    }
  }

  private async closePart(): Promise<void> {
    if (!this.writer) return;
    const digests: PartDigests = {
      sha1: this.sha1.digest('hex'),
      md5: this.md5.digest('base64'),
      size: this.size,
    };
    const writer = this.writer;
    this.writer = undefined;
    this.sha1 = crypto.createHash('sha1');
    this.md5 = crypto.createHash('md5');
    this.size = 0;
    await writer.close(digests);
    this.parts.push(digests);
    this.onPart?.(this.parts.length - 1, digests);
  }
}
