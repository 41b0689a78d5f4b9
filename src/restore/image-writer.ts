// Writes the restored image into a private temporary file at the offsets the tar member gives,
// leaving holes where the archive has none and, for plain members, where a whole 4 KiB block is
// zero: the restored file reads the same bytes and uses no disk for empty space. The file gets
// its final name only after every check passed.
import fs from 'node:fs';
import path from 'node:path';
import { ownedTempPath, trackTemp, untrackTemp } from '../io/owned-temp.js';
import { putInPlace } from '../io/put-in-place.js';
import { zeroBlocks } from '../io/zero-scan.js';
import type { TarMember } from '../format/tar-reader.js';

const HOLE_BLOCK = 4096;

export class ImageWriter {
  private handle: fs.promises.FileHandle | undefined;
  private readonly tempPath: string;
  private readonly finalPath: string;
  private writtenBytes = 0;

  /** What an existing DEST/NAME was, when commit() replaced one (for the line saying so). */
  replaced: string | undefined;

  constructor(
    destination: string,
    private readonly member: TarMember,
    /** The manifest's image name (restore has checked the member's name equals it). */
    name = member.name,
  ) {
    this.finalPath = path.join(destination, name);
    this.tempPath = ownedTempPath(destination, name, 'partial');
  }

  get path(): string {
    return this.finalPath;
  }

  get bytesWritten(): number {
    return this.writtenBytes;
  }

  async open(): Promise<void> {
    this.handle = await fs.promises.open(this.tempPath, 'wx', 0o600);
    trackTemp(this.tempPath);
  }

  async write(offset: number, chunk: Buffer): Promise<void> {
    const handle = this.handle!;
    if (this.member.sparseMap) {
      await writeFully(handle, chunk, offset);
      this.writtenBytes += chunk.length;
      return;
    }
    // Skip whole zero blocks aligned to the file, write the rest in runs.
    const lead = (HOLE_BLOCK - (offset % HOLE_BLOCK)) % HOLE_BLOCK;
    const headLen = Math.min(lead, chunk.length);
    if (headLen > 0) await this.writeRun(chunk.subarray(0, headLen), offset);
    const body = chunk.subarray(headLen);
    const fullBlocks = Math.floor(body.length / HOLE_BLOCK);
    const zeros = zeroBlocks(body.subarray(0, fullBlocks * HOLE_BLOCK), HOLE_BLOCK);
    let runStart = -1;
    for (let b = 0; b <= fullBlocks; b++) {
      const isData = b < fullBlocks && zeros[b] === 0;
      if (isData && runStart < 0) runStart = b;
      if (!isData && runStart >= 0) {
        await this.writeRun(
          body.subarray(runStart * HOLE_BLOCK, b * HOLE_BLOCK),
          offset + headLen + runStart * HOLE_BLOCK,
        );
        runStart = -1;
      }
    }
    const tail = body.subarray(fullBlocks * HOLE_BLOCK);
    if (tail.length > 0) await this.writeRun(tail, offset + headLen + fullBlocks * HOLE_BLOCK);
  }

  private async writeRun(run: Buffer, offset: number): Promise<void> {
    await writeFully(this.handle!, run, offset);
    this.writtenBytes += run.length;
  }

  /**
   * Sets the apparent size (trailing holes), mode and mtime, then renames into place. Renaming
   * replaces a directory entry: an existing DEST/NAME that is a symbolic link is replaced by the
   * image, its target is never written. What was replaced is left in `replaced`.
   */
  async commit(): Promise<string> {
    const { size, mode, mtime } = this.member;
    // The handle stays known until it is closed, so discard() can still close it after a failure.
    this.replaced = await putInPlace(this.handle!, this.tempPath, this.finalPath, {
      length: size,
      mode,
      mtime,
    });
    this.handle = undefined;
    return this.finalPath;
  }

  async discard(): Promise<void> {
    if (this.handle) await this.handle.close().catch(() => undefined);
    this.handle = undefined;
    await fs.promises.rm(this.tempPath, { force: true });
    untrackTemp(this.tempPath);
  }
}

async function writeFully(handle: fs.promises.FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}
