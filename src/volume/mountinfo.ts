// The kernel's mount table (/proc/self/mountinfo), parsed with its octal escapes decoded, and
// the questions bundle-vol asks of it: what is mounted at or below a directory.
import fs from 'node:fs';
import path from 'node:path';

export interface MountEntry {
  readonly id: number;
  readonly parentId: number;
  /** `major:minor` of the file system's device (0:N for btrfs, tmpfs and other virtual ones). */
  readonly devNumber: string;
  /** The directory of the file system that is mounted here (not `/` for bind mounts of a subtree). */
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
  readonly options: string;
}

function unescapeMountField(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 3) continue;
    entries.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      devNumber: fields[2]!,
      root: unescapeMountField(fields[3]!),
      mountPoint: unescapeMountField(fields[4]!),
      options: fields[5]!,
      fsType: fields[dash + 1]!,
      source: unescapeMountField(fields[dash + 2]!),
    });
  }
  return entries;
}

export function readMountInfo(): MountEntry[] {
  return parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** True when `child` is `parent` or inside it (both absolute and normalised). */
export function isWithin(child: string, parent: string): boolean {
  if (parent === '/') return child.startsWith('/');
  return child === parent || child.startsWith(`${parent}/`);
}

/**
 * The mount visible at `mountPoint`: the last one mounted there (later mounts hide earlier
 * ones), or undefined when the directory is not a mount point.
 */
export function mountAt(entries: readonly MountEntry[], mountPoint: string): MountEntry | undefined {
  let found: MountEntry | undefined;
  for (const e of entries) if (e.mountPoint === mountPoint) found = e;
  return found;
}

/** The mount that holds `dir`: the visible mount with the longest mount point containing it. */
export function mountContaining(entries: readonly MountEntry[], dir: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const e of entries) {
    if (!isWithin(dir, e.mountPoint)) continue;
    if (!best || e.mountPoint.length >= best.mountPoint.length) best = e;
  }
  return best;
}

/** Visible mounts strictly below `dir`, shallowest first (a later mount at a point hides earlier ones). */
export function mountsBelow(entries: readonly MountEntry[], dir: string): MountEntry[] {
  const byPoint = new Map<string, MountEntry>();
  for (const e of entries)
    if (e.mountPoint !== dir && isWithin(e.mountPoint, dir)) byPoint.set(e.mountPoint, e);
  return [...byPoint.values()].sort(
    (a, b) =>
      a.mountPoint.split('/').length - b.mountPoint.split('/').length ||
      a.mountPoint.localeCompare(b.mountPoint),
  );
}

/** `path.relative` as an absolute path inside the volume: `/srv/vol` + `/srv/vol/etc` -> `/etc`. */
export function volumePath(volume: string, hostPath: string): string {
  const rel = path.relative(volume, hostPath);
  return rel === '' ? '/' : `/${rel}`;
}
