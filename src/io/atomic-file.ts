// Writing files so that no reader ever sees a half-written or briefly world-readable file: the
// bytes go to a fresh temporary name in the same directory (O_EXCL, the final mode from the
// first moment), are flushed to the disk, then the name is switched in one step. This is the one
// way amibundle writes a whole file (keys, certificates, migrated manifests, downloaded parts and
// manifests): the temporary carries its owner (io/owned-temp.ts), so one left by a killed run is
// swept by the next, and it is removed on exit. Asynchronous, so that parallel downloads keep
// receiving while a part is written and synced.
import fs from 'node:fs';
import path from 'node:path';
import { AmiError, ExitCode, MissingFileError } from '../errors.js';
import { ownedTempPath, trackTemp, untrackTemp } from './owned-temp.js';

export interface AtomicWriteOptions {
  /** Permission bits of the new file: set exactly (keys, manifests keeping their file's mode). */
  readonly mode: number;
  /**
   * true: `mode` is narrowed by the umask like any new file's (downloaded parts, as bundling
   * writes them), instead of being set exactly.
   */
  readonly underUmask?: boolean;
  /**
   * true: replace an existing file (rename). false: fail with exit 2 if the name exists (link,
   * which never clobbers, so two racing writers cannot both win).
   */
  readonly overwrite: boolean;
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
 * Writes `data` to `target` atomically and durably. Throws AmiError(exit 2) if `target` exists
 * and `overwrite` is false; on any failure the temporary file is removed and `target` is untouched.
 */
export async function writeFileAtomic(
  target: string,
  data: Buffer | string,
  opts: AtomicWriteOptions,
  existsHint = 'remove it or choose another name',
  what = 'file',
): Promise<void> {
  const tmp = ownedTempPath(path.dirname(target), path.basename(target));
  const fh = await fs.promises.open(
    tmp,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL,
    opts.mode,
  );
  trackTemp(tmp);
  try {
    try {
      if (opts.underUmask !== true) await fh.chmod(opts.mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (opts.overwrite) {
      await fs.promises.rename(tmp, target);
    } else {
      try {
        await fs.promises.link(tmp, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw existsError(target, what, existsHint);
        throw err;
      }
      await fs.promises.unlink(tmp);
    }
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  } finally {
    untrackTemp(tmp);
  }
  await syncDirectory(path.dirname(target));
}

/** Makes a rename or link durable; best effort (some filesystems refuse to fsync directories). */
async function syncDirectory(dir: string): Promise<void> {
  let fh: fs.promises.FileHandle | undefined;
  try {
    fh = await fs.promises.open(dir, 'r');
    await fh.sync();
  } catch {
    // Durability of the directory entry is a nicety; the data itself was synced.
  } finally {
    await fh?.close();
  }
}
