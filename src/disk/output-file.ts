// The file a formatted image is written to: a private temporary name next to the final one, an
// append cursor that gathers small pieces into large writes (the formats lay data out
// sequentially), positioned writes for metadata filled in at the end, and an atomic rename.
import fs from 'node:fs';
import path from 'node:path';
import { ownedTempPath, trackTemp, untrackTemp } from '../io/owned-temp.js';
import { putInPlace } from '../io/put-in-place.js';

/** Appends are gathered up to this much before one write. */
const GATHER = 1024 * 1024;

export class OutputFile {
  private handle: fs.promises.FileHandle | undefined;
  private readonly tempPath: string;
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  /** File offset of the first gathered byte. */
  private flushedTo = 0;
  private written = 0;
  /** What an existing file of the final name was, when commit() replaced one. */
  replaced: string | undefined;

  constructor(
    readonly finalPath: string,
    startAt = 0,
  ) {
    this.tempPath = ownedTempPath(path.dirname(finalPath), path.basename(finalPath), 'partial');
    this.flushedTo = startAt;
  }

  get bytesWritten(): number {
    return this.written;
  }

  /** Offset the next append lands at. */
  get position(): number {
    return this.flushedTo + this.gatheredBytes;
  }

  async open(): Promise<void> {
    this.handle = await fs.promises.open(this.tempPath, 'wx', 0o600);
    trackTemp(this.tempPath);
  }

  /** Appends `buf` (kept by reference until flushed: the caller must not reuse it). */
  async append(buf: Buffer): Promise<void> {
    if (buf.length === 0) return;
    this.gathered.push(buf);
    this.gatheredBytes += buf.length;
    if (this.gatheredBytes >= GATHER) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.gatheredBytes === 0) return;
    const pieces = this.gathered;
    const at = this.flushedTo;
    this.gathered = [];
    this.flushedTo += this.gatheredBytes;
    this.gatheredBytes = 0;
    let position = at;
    let rest = pieces;
    while (rest.length > 0) {
      const { bytesWritten } = await this.handle!.writev(rest, position);
      position += bytesWritten;
      this.written += bytesWritten;
      rest = consumed(rest, bytesWritten);
    }
  }

  /** Writes `buf` at `offset` (metadata laid out ahead and filled in once known). */
  async writeAt(offset: number, buf: Buffer): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.handle!.write(buf, done, buf.length - done, offset + done);
      done += bytesWritten;
    }
    this.written += buf.length;
  }

  /** Flushes, sets the length, mode and mtime, and renames into place. */
  async commit(length: number, mode: number, mtime: number): Promise<string> {
    await this.flush();
    this.replaced = await putInPlace(this.handle!, this.tempPath, this.finalPath, { length, mode, mtime });
    this.handle = undefined;
    return this.finalPath;
  }

  async discard(): Promise<void> {
    if (this.handle) await this.handle.close().catch(() => undefined);
    this.handle = undefined;
    this.gathered = [];
    this.gatheredBytes = 0;
    await fs.promises.rm(this.tempPath, { force: true });
    untrackTemp(this.tempPath);
  }
}

/** What is left of `pieces` after the first `n` bytes were written. */
function consumed(pieces: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < pieces.length && n >= pieces[i]!.length) n -= pieces[i++]!.length;
  if (i === pieces.length) return [];
  return [pieces[i]!.subarray(n), ...pieces.slice(i + 1)];
}
