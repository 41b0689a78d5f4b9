// What bundle-vol learns about the volume before copying it: whether it is a mount point, the
// device and file system under it (type, label, UUID, ext features), the partition table of the
// disk it lives on (for `-P auto`), and what else is mounted below it.
import fs from 'node:fs';
import path from 'node:path';
import type { Reporter } from '../events.js';
import { mountAt, mountsBelow, readMountInfo, type MountEntry } from './mountinfo.js';
import { runTool } from '../io/run-tool.js';

export interface ExtParameters {
  /** Features as `tune2fs -l` lists them, minus the run-time state flags. */
  readonly features: readonly string[];
  readonly inodeSize?: number;
  readonly blockSize?: number;
}

export interface SourceFacts {
  /** Real path of the volume, without a trailing slash (except `/`). */
  readonly volume: string;
  /** The mount whose mount point is the volume, when it is one. */
  readonly mount?: MountEntry;
  /** `/dev/NAME` of the volume's file system, when it has a block device. */
  readonly device?: string;
  readonly fsType?: string;
  readonly label?: string;
  readonly uuid?: string;
  readonly ext?: ExtParameters;
  /** The whole disk the device is a partition of, and its partition table type. */
  readonly disk?: { readonly device: string; readonly tableType?: string };
  /** Mounts strictly below the volume. */
  readonly mountsBelow: readonly MountEntry[];
}

/** blkid -o export: KEY=VALUE lines with backslash escapes. */
export function parseBlkidExport(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    map.set(line.slice(0, eq), line.slice(eq + 1).replace(/\\(.)/g, '$1'));
  }
  return map;
}

/** Run-time state flags that describe a mounted file system, not its format. */
const stateFeatures = new Set(['needs_recovery', 'orphan_present', 'mmp', 'journal_dev', 'snapshot_bitmap']);

export function parseTune2fsList(text: string): ExtParameters {
  const field = (name: string): string | undefined => {
    const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text);
    return m?.[1]?.trim();
  };
  const features = (field('Filesystem features') ?? '')
    .split(/\s+/)
    .filter((f) => f.length > 0 && f !== '(none)' && !stateFeatures.has(f));
  const inode = Number(field('Inode size'));
  const block = Number(field('Block size'));
  return {
    features,
    ...(Number.isInteger(inode) && inode > 0 ? { inodeSize: inode } : {}),
    ...(Number.isInteger(block) && block > 0 ? { blockSize: block } : {}),
  };
}

/** `/dev/NAME` for a `major:minor` pair, through sysfs (works for `/dev/root` too). */
function deviceForNumber(devNumber: string): string | undefined {
  if (devNumber.startsWith('0:')) return undefined;
  try {
    const sys = fs.realpathSync(`/sys/dev/block/${devNumber}`);
    const uevent = fs.readFileSync(path.join(sys, 'uevent'), 'utf8');
    const name = /^DEVNAME=(.*)$/m.exec(uevent)?.[1] ?? path.basename(sys);
    const dev = `/dev/${name}`;
    return fs.existsSync(dev) ? dev : undefined;
  } catch {
    return undefined;
  }
}

/** The whole disk a partition device belongs to, or undefined for a whole-disk device. */
export function parentDisk(device: string): string | undefined {
  const name = path.basename(fs.realpathSync(device));
  try {
    const sys = fs.realpathSync(`/sys/class/block/${name}`);
    if (!fs.existsSync(path.join(sys, 'partition'))) return undefined;
    const parent = `/dev/${path.basename(path.dirname(sys))}`;
    return fs.existsSync(parent) ? parent : undefined;
  } catch {
    return undefined;
  }
}

async function blkid(device: string, out: Reporter | undefined): Promise<Map<string, string>> {
  // -p probes the device itself: the blkid cache can be stale for a live system.
  const r = await runTool('blkid', ['-p', '-o', 'export', device], { out, okCodes: [2] });
  return parseBlkidExport(r.stdout);
}

export async function probeSource(volumeArg: string, out?: Reporter): Promise<SourceFacts> {
  const volume = fs.realpathSync(volumeArg);
  const mounts = readMountInfo();
  const mount = mountAt(mounts, volume);
  const below = mountsBelow(mounts, volume);
  if (!mount) return { volume, mountsBelow: below };

  const device =
    deviceForNumber(mount.devNumber) ??
    (mount.source.startsWith('/dev/') && fs.existsSync(mount.source) ? mount.source : undefined);
  if (!device) return { volume, mount, fsType: mount.fsType, mountsBelow: below };

  let info = new Map<string, string>();
  try {
    info = await blkid(device, out);
  } catch (err) {
    out?.debug(`blkid ${device}: ${String(err)}`);
  }
  const fsType = info.get('TYPE') ?? mount.fsType;
  let ext: ExtParameters | undefined;
  if (/^ext[234]$/.test(fsType)) {
    try {
      ext = parseTune2fsList((await runTool('tune2fs', ['-l', device], { out })).stdout);
    } catch (err) {
      out?.debug(`tune2fs -l ${device}: ${String(err)}`);
    }
  }
  let disk: SourceFacts['disk'];
  const parent = parentDisk(device);
  if (parent) {
    let tableType: string | undefined;
    try {
      const r = await runTool('blkid', ['-p', '-o', 'value', '-s', 'PTTYPE', parent], { out, okCodes: [2] });
      tableType = r.stdout.trim() || undefined;
    } catch (err) {
      out?.debug(`blkid ${parent}: ${String(err)}`);
    }
    disk = { device: parent, ...(tableType ? { tableType } : {}) };
  }
  return {
    volume,
    mount,
    device,
    fsType,
    ...(info.get('LABEL') ? { label: info.get('LABEL') } : {}),
    ...(info.get('UUID') ? { uuid: info.get('UUID') } : {}),
    ...(ext ? { ext } : {}),
    ...(disk ? { disk } : {}),
    mountsBelow: below,
  };
}

/** Files used as swap (`/proc/swaps`), which are never copied. */
export function swapFiles(): string[] {
  let text = '';
  try {
    text = fs.readFileSync('/proc/swaps', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.split(/\s+/))
    .filter((f) => f[1] === 'file' && f[0])
    .map((f) => f[0]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
}
