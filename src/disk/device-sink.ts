// `unbundle --device`: the restored image written onto a block device instead of a file, as an
// image sink, so it works from a local bundle and from S3 alike. A device is not a fresh file:
// whatever was on it stays where the image has a hole, so holes are written as zeros unless the
// user says the device already reads zeros (`--assume-zeroed`: a new EBS volume does; zero blocks
// of the data are then skipped too). The device is opened O_EXCL, which the kernel turns into
// "nobody else has it open exclusively, nothing is mounted from it" for block devices. The end
// is an fsync; with `--check` the SHA-1 of the image as written (holes as zeros) is computed on
// the way and compared with a re-read of the device once its cache has been dropped.
import fs from 'node:fs';
import type { Reporter } from '../events.js';
import { AmiError, BundleError } from '../errors.js';
import { createAsyncSha1, type AsyncSha1 } from '../io/async-sha1.js';
import { zeroBlocks } from '../io/zero-scan.js';
import { onPath, runTool } from '../io/run-tool.js';
import type { ImageSink } from './image-sink.js';

/** Zeros are written (and hashed) from one buffer of this size. */
const ZERO_RUN = 1024 * 1024;
/** What the check reads back at once. */
const READ_BACK = 4 * 1024 * 1024;
/** Zero blocks skipped with --assume-zeroed are whole 4 KiB blocks of the device. */
const BLOCK = 4096;

let zeros: Buffer | undefined;
function zeroRun(): Buffer {
  return (zeros ??= Buffer.alloc(ZERO_RUN));
}

export interface DeviceSinkOptions {
  readonly device: string;
  /** The image's size: holes up to it are zeroed, and the check reads this much back. */
  readonly size: number;
  /** `--assume-zeroed`: the device reads zeros, so holes and zero blocks are not written. */
  readonly assumeZeroed: boolean;
  /** `--check`: re-read what was written and compare digests. */
  readonly check: boolean;
  readonly out?: Reporter;
}

export class DeviceSink implements ImageSink {
  private handle: fs.promises.FileHandle | undefined;
  /** End of what has been handed over (written, or a hole zeroed or skipped). */
  private end = 0;
  private written = 0;
  private readonly hash: AsyncSha1 | undefined;
  /** The hex SHA-1 of the image as written, once committed with `check`. */
  digest: string | undefined;
  readonly replaced = undefined;

  constructor(private readonly opts: DeviceSinkOptions) {
    this.hash = opts.check ? createAsyncSha1() : undefined;
  }

  get path(): string {
    return this.opts.device;
  }

  get bytesWritten(): number {
    return this.written;
  }

  async open(): Promise<void> {
    try {
      this.handle = await fs.promises.open(this.opts.device, fs.constants.O_RDWR | fs.constants.O_EXCL);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EBUSY')
        throw new AmiError(
          `--device ${this.opts.device} is in use: the kernel refused exclusive access (mounted, swap, or held by another program)`,
          undefined,
          'unmount it and stop what uses it, or choose another device',
        );
      throw err;
    }
  }

  async write(offset: number, chunk: Buffer): Promise<void> {
    if (offset > this.end) await this.hole(offset);
    if (this.opts.assumeZeroed) await this.writeSkippingZeros(offset, chunk);
    else await this.writeRun(chunk, offset);
    await this.hash?.update(chunk);
    this.end = offset + chunk.length;
  }

  /** Zeros from the end of what was written up to `to`: written, or (--assume-zeroed) only hashed. */
  private async hole(to: number): Promise<void> {
    const run = zeroRun();
    for (let at = this.end; at < to; at += ZERO_RUN) {
      const piece = run.subarray(0, Math.min(ZERO_RUN, to - at));
      await Promise.all([
        this.opts.assumeZeroed ? undefined : this.writeRun(piece, at),
        this.hash?.update(piece),
      ]);
    }
    this.end = to;
  }

  /** Writes the chunk's runs of non-zero 4 KiB blocks (aligned to the device); zero blocks already are. */
  private async writeSkippingZeros(offset: number, chunk: Buffer): Promise<void> {
    const lead = Math.min((BLOCK - (offset % BLOCK)) % BLOCK, chunk.length);
    if (lead > 0) await this.writeRun(chunk.subarray(0, lead), offset);
    const body = chunk.subarray(lead);
    const flags = zeroBlocks(body, BLOCK);
    let start = -1;
    for (let b = 0; b <= flags.length; b++) {
      const data = b < flags.length && flags[b] === 0;
      if (data && start < 0) start = b;
      if (!data && start >= 0) {
        const to = Math.min(b * BLOCK, body.length);
        await this.writeRun(body.subarray(start * BLOCK, to), offset + lead + start * BLOCK);
        start = -1;
      }
    }
  }

  private async writeRun(run: Buffer, position: number): Promise<void> {
    let done = 0;
    while (done < run.length) {
      const { bytesWritten } = await this.handle!.write(run, done, run.length - done, position + done);
      done += bytesWritten;
    }
    this.written += run.length;
  }

  /** Zeroes the tail, fsyncs, and with `check` compares a re-read of the device with what was written. */
  async commit(): Promise<string> {
    if (this.opts.size > this.end) await this.hole(this.opts.size);
    await this.handle!.sync();
    if (this.hash) {
      const wrote = await this.hash.digest();
      await this.dropCache();
      const read = await this.readBack();
      if (read !== wrote)
        throw new BundleError(
          `--check: ${this.opts.device} does not read back what was written (SHA-1 ${read}, written ${wrote})`,
          'the device or its driver lost writes; restore onto another device',
        );
      this.digest = wrote;
      this.opts.out?.info(`Checked: ${this.opts.device} reads back the image (SHA-1 ${wrote}).`);
    }
    await this.handle!.close();
    this.handle = undefined;
    return this.opts.device;
  }

  /** Drops the device's page cache, so the re-read comes from the device, not from memory. */
  private async dropCache(): Promise<void> {
    if (!onPath('blockdev')) {
      this.opts.out?.warn('blockdev is not installed: --check re-reads through the page cache');
      return;
    }
    await runTool('blockdev', ['--flushbufs', this.opts.device], {
      ...(this.opts.out ? { out: this.opts.out } : {}),
      what: `dropping the cache of ${this.opts.device} (blockdev --flushbufs)`,
    });
  }

  private async readBack(): Promise<string> {
    const hash = createAsyncSha1();
    const buf = Buffer.allocUnsafeSlow(READ_BACK);
    for (let at = 0; at < this.opts.size;) {
      const want = Math.min(READ_BACK, this.opts.size - at);
      const { bytesRead } = await this.handle!.read(buf, 0, want, at);
      if (bytesRead === 0) throw new BundleError(`--check: ${this.opts.device} ended at byte ${at}`);
      await hash.update(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
    return hash.digest();
  }

  /** Closes the device; what was written stays (a device has no temporary name to remove). */
  async discard(): Promise<void> {
    if (this.handle) await this.handle.close().catch(() => undefined);
    this.handle = undefined;
  }
}
