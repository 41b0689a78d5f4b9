// Paths inside a copied system, resolved as that system would resolve them: a symbolic link to
// /etc/fstab.d/x or to ../boot means the image's own file, never this host's. Without this, a
// tree whose boot is a link to /boot would have grub-install write into the host's /boot.
import fs from 'node:fs';
import path from 'node:path';
import { AmiError } from '../errors.js';

const MAX_LINKS = 40;

/**
 * The host path of `rel` (an absolute or relative path inside the system at `root`), following
 * symbolic links as if `root` were `/`. Components that do not exist are kept as they are (the
 * caller may create them). The result is always inside `root`.
 */
export function pathInImage(root: string, rel: string): string {
  const pending = rel.split('/').filter((p) => p !== '' && p !== '.');
  let resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(candidate);
    } catch {
      resolved.push(part);
      continue;
    }
    if (!st.isSymbolicLink()) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new AmiError(`too many symbolic links in /${rel} inside ${root}`);
    const target = fs.readlinkSync(candidate);
    if (target.startsWith('/')) resolved = [];
    pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return path.join(root, ...resolved);
}
