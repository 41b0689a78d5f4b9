// Writing files so that no reader ever sees a half-written or briefly world-readable file: the
// bytes go to a fresh temporary name in the same directory (O_EXCL, the final mode from the
// first moment), are flushed, then the name is switched in one step.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AmiError, ExitCode, MissingFileError } from '../errors.js';

export interface AtomicWriteOptions {
  /** Permission bits of the new file (umask cannot widen them; they are set exactly). */
  readonly mode: number;
  /**
   * true: replace an existing file (rename). false: fail with exit 2 if the name exists (link,
   * which never clobbers, so two racing writers cannot both win).
   */
  readonly overwrite: boolean;
}

function tempNameFor(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.tmp-${process.pid}-${crypto.randomBytes(6).toString('hex')}`,
  );
}

/** Fails with exit 2 and a clear line when the directory a file should go to does not exist. */
export function requireParentDirectory(target: string, what: string): void {
  const dir = path.dirname(path.resolve(target));
  let ok = false;
  try {
    ok = fs.statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new MissingFileError(`cannot write the ${what} ${target}: directory ${dir} does not exist`);
}

/** The error for a name that is already taken, naming the way out. */
export function existsError(target: string, what: string, hint: string): AmiError {
  return new AmiError(`the ${what} ${target} already exists`, ExitCode.missingFile, hint);
}

/**
 * Writes `data` to `target` atomically. Throws AmiError(exit 2) if `target` exists and
 * `overwrite` is false; on any failure the temporary file is removed and `target` is untouched.
 */
export function writeFileAtomic(
  target: string,
  data: Buffer | string,
  opts: AtomicWriteOptions,
  existsHint = 'remove it or choose another name',
  what = 'file',
): void {
  const tmp = tempNameFor(target);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, opts.mode);
  try {
    try {
      fs.fchmodSync(fd, opts.mode);
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (opts.overwrite) {
      fs.renameSync(tmp, target);
    } else {
      try {
        fs.linkSync(tmp, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw existsError(target, what, existsHint);
        throw err;
      }
      fs.unlinkSync(tmp);
    }
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  syncDirectory(path.dirname(target));
}

/** Makes a rename or link durable; best effort (some filesystems refuse to fsync directories). */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Durability of the directory entry is a nicety; the data itself was fsynced.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
