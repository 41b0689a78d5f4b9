// The last step of every restored file (raw image or disk format): the temporary file gets its
// final length, mode and mtime, then its final name by rename. Renaming replaces a directory
// entry, so an existing symbolic link of that name is replaced, its target never written; an
// existing directory is refused. The caller announces what was replaced.
import fs from 'node:fs';
import { BundleError } from '../errors.js';
import { untrackTemp } from './owned-temp.js';

export interface FinalFacts {
  readonly length: number;
  readonly mode: number;
  readonly mtime: number;
}

/**
 * Closes `handle` on `tempPath` with `facts` and renames it to `finalPath`. Returns what an
 * existing entry of that name was ('a file', 'a symbolic link: …'), or undefined.
 */
export async function putInPlace(
  handle: fs.promises.FileHandle,
  tempPath: string,
  finalPath: string,
  facts: FinalFacts,
): Promise<string | undefined> {
  await handle.truncate(facts.length);
  await handle.chmod(facts.mode & 0o777);
  await handle.utimes(facts.mtime, facts.mtime);
  await handle.close();
  const existing = await fs.promises.lstat(finalPath).catch(() => undefined);
  if (existing?.isDirectory())
    throw new BundleError(
      `${finalPath} is a directory; the image cannot replace it`,
      'move it away or choose another destination (-d)',
    );
  await fs.promises.rename(tempPath, finalPath);
  untrackTemp(tempPath);
  if (!existing) return undefined;
  return existing.isSymbolicLink() ? 'a symbolic link: the link, not its target' : 'a file';
}
