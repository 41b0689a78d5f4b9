// Opening bundle files (parts, manifests) that someone else may have prepared. A plain open
// follows a symlink out of the bundle folder (and the printed SHA-1 then reveals what the link
// points at) and blocks forever on a FIFO. So: O_NOFOLLOW and O_NONBLOCK, then fstat on that
// same descriptor, and anything but a regular file is refused by name before a byte is read.
// O_NONBLOCK is harmless afterwards: reads of regular files never block on it.
import fs from 'node:fs';
import { BundleError, MissingFileError } from '../errors.js';

const SAFE_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/** 'a FIFO', 'a directory', … for a non-regular file. */
export function kindOf(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

export function notRegular(what: string, file: string, kind: string): BundleError {
  return new BundleError(
    `${what} ${file} is ${kind}, not a regular file: refusing to read it`,
    `${what}s must be regular files (copy the file itself into place, not a link)`,
  );
}

/** Turns an open() failure into the error a user can act on. */
function openFailure(err: unknown, what: string, file: string, missingHint?: string): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new MissingFileError(`${what} ${file} is missing`, missingHint);
  // ELOOP: the name is a symlink (O_NOFOLLOW); ENXIO: a socket. Name what it is.
  if (code === 'ELOOP' || code === 'ENXIO' || code === 'EOPNOTSUPP') {
    try {
      return notRegular(what, file, kindOf(fs.lstatSync(file)));
    } catch {
      /* gone meanwhile: fall through */
    }
  }
  return new MissingFileError(`cannot read the ${what} ${file}: ${(err as Error).message}`);
}

export interface OpenedRegular {
  readonly handle: fs.promises.FileHandle;
  readonly size: number;
}

/**
 * Opens a regular file for reading without following a link or blocking; `maxBytes` is checked
 * on the descriptor's own fstat. Everything else is refused with one line naming `what`.
 */
export async function openRegular(
  file: string,
  what: string,
  maxBytes: number,
  missingHint?: string,
): Promise<OpenedRegular> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, SAFE_FLAGS);
  } catch (err) {
    throw openFailure(err, what, file, missingHint);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw notRegular(what, file, kindOf(st));
    if (st.size > maxBytes)
      throw new BundleError(`${what} ${file} is ${st.size} bytes, more than a ${what} can be (${maxBytes})`);
    return { handle, size: st.size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** The whole of a regular file (openRegular's checks), read from the descriptor that was checked. */
export async function readRegular(file: string, what: string, maxBytes: number): Promise<Buffer> {
  const { handle, size } = await openRegular(file, what, maxBytes);
  try {
    const data = await handle.readFile();
    if (data.length !== size) throw new BundleError(`${what} ${file} changed size while being read`);
    return data;
  } finally {
    await handle.close();
  }
}

/**
 * The whole of a small regular file, read from the descriptor that was checked (no stat-then-read
 * window), refused if it is not regular or larger than `maxBytes` (or if it grows meanwhile).
 */
export function readRegularSync(file: string, what: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, SAFE_FLAGS);
  } catch (err) {
    throw openFailure(err, what, file);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw notRegular(what, file, kindOf(st));
    if (st.size > maxBytes)
      throw new BundleError(`${what} ${file} is ${st.size} bytes, more than a ${what} can be (${maxBytes})`);
    // One byte more than the fstat said, to see a file that grew since.
    const buf = Buffer.alloc(st.size + 1);
    let filled = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, filled, buf.length - filled, filled);
      if (n === 0) break;
      filled += n;
      if (filled > st.size) throw new BundleError(`${what} ${file} changed size while being read`);
    }
    return buf.subarray(0, filled);
  } finally {
    fs.closeSync(fd);
  }
}
