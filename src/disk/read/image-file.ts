// The image file as the readers see it: positioned reads that never go past its end. Every offset
// and length a header gives goes through here, so a truncated file or a table pointing outside it
// is one clear error naming the file and what was being read, never a short image.
import fs from 'node:fs';
import { BundleError } from '../../errors.js';

export class ImageFile {
  private constructor(
    readonly path: string,
    private readonly handle: fs.promises.FileHandle,
    /** Bytes in the file. */
    readonly size: number,
    readonly stat: fs.Stats,
  ) {}

  static async open(path: string, size?: number): Promise<ImageFile> {
    const handle = await fs.promises.open(path, 'r');
    try {
      const stat = await handle.stat();
      return new ImageFile(path, handle, size ?? stat.size, stat);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  get fd(): number {
    return this.handle.fd;
  }

  /** A BundleError naming the file: "FILE: what is wrong". */
  error(message: string, hint?: string): BundleError {
    return new BundleError(`${this.path}: ${message}`, hint);
  }

  /** Checks that [offset, offset + length) lies inside the file; `what` names it for the error. */
  check(offset: number, length: number, what: string): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
      throw this.error(`the ${what} has an impossible offset or length (${offset}, ${length})`);
    if (offset + length > this.size)
      throw this.error(
        `truncated or corrupt: the ${what} (bytes ${offset} to ${offset + length}) lies past the end of the file (${this.size} bytes)`,
      );
  }

  /** Exactly `length` bytes at `offset` into a new buffer. */
  async read(offset: number, length: number, what: string): Promise<Buffer> {
    this.check(offset, length, what);
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.handle.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) throw this.error(`truncated: the file ended while reading the ${what}`);
      got += bytesRead;
    }
    return buf;
  }

  /** Up to `length` bytes at `offset`, fewer where the file ends (for probing headers). */
  async readUpTo(offset: number, length: number): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    if (n === 0) return Buffer.alloc(0);
    return this.read(offset, n, 'header');
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** Guest bytes mapped to file bytes, gathered while they stay contiguous in both. */
export interface MappedRun {
  guest: number;
  host: number;
  length: number;
}

/** Gathers mapped pieces into runs of up to `max` bytes, so contiguous data is read in large reads. */
export class RunGatherer {
  private run: MappedRun | undefined;

  constructor(private readonly max: number) {}

  /** Adds a piece; returns the run to read first when the piece does not continue it. */
  add(guest: number, host: number, length: number): MappedRun | undefined {
    const r = this.run;
    if (r && r.guest + r.length === guest && r.host + r.length === host && r.length + length <= this.max) {
      r.length += length;
      return undefined;
    }
    this.run = { guest, host, length };
    return r;
  }

  /** The run gathered so far, if any; the gatherer starts empty again. */
  take(): MappedRun | undefined {
    const r = this.run;
    this.run = undefined;
    return r;
  }
}

/** Reads a mapped run as data extents of at most `chunk` bytes each. */
export async function* readRun(
  file: ImageFile,
  run: MappedRun,
  chunk: number,
  what: string,
): AsyncIterable<{ offset: number; length: number; data: Buffer }> {
  file.check(run.host, run.length, what);
  for (let done = 0; done < run.length; done += chunk) {
    const n = Math.min(chunk, run.length - done);
    yield { offset: run.guest + done, length: n, data: await file.read(run.host + done, n, what) };
  }
}
