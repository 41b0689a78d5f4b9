// Whether a block device may be overwritten with a restored image: `unbundle --device` is what
// AWS's recipe does with dd, and dd happily overwrites the disk the system runs from. The answer
// comes from the kernel: sysfs says what the device is (a disk or a partition, its partitions,
// its size, what is stacked on it) and /proc/self/mountinfo and /proc/swaps say what is in use.
import fs from 'node:fs';
import path from 'node:path';
import { AmiError, MissingFileError } from '../errors.js';
import { formatBytes } from '../format-bytes.js';
import { kindOf } from '../io/safe-open.js';
import { readMountInfo, type MountEntry } from '../volume/mountinfo.js';

/** One block device as sysfs shows it. */
export interface BlockNode {
  /** Kernel name: `loop3`, `loop3p1`, `xvdf`, `nvme1n1p2`. */
  readonly name: string;
  /** `major:minor`, as mountinfo writes it. */
  readonly devNumber: string;
  /** The node's directory under /sys/devices. */
  readonly sysDir: string;
}

export interface BlockDeviceFacts extends BlockNode {
  /** The path as given (what the messages name). */
  readonly path: string;
  readonly sizeBytes: number;
  /** The whole disk, when this is a partition of one. */
  readonly disk?: BlockNode;
  /** This disk's partitions (none for a partition). */
  readonly partitions: readonly BlockNode[];
}

function readSys(file: string): string {
  return fs.readFileSync(file, 'utf8').trim();
}

function node(sysDir: string): BlockNode {
  return { name: path.basename(sysDir), devNumber: readSys(path.join(sysDir, 'dev')), sysDir };
}

/** Major and minor of a device number (glibc's encoding: 12 bits of major, 20 of minor). */
function majorMinor(rdev: bigint): string {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** What `--device PATH` is; refuses a path that is not a block device (exit 2). */
export function inspectBlockDevice(devicePath: string): BlockDeviceFacts {
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(devicePath, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new MissingFileError(`--device ${devicePath}: no such device`);
    throw err;
  }
  if (!st.isBlockDevice())
    throw new MissingFileError(
      `--device ${devicePath} is not a block device (it is ${kindOf(st as unknown as fs.Stats)})`,
      'give a disk such as /dev/xvdf, or write a file with -d DIRECTORY',
    );
  const sysDir = fs.realpathSync(`/sys/dev/block/${majorMinor(st.rdev)}`);
  const self = node(sysDir);
  const isPartition = fs.existsSync(path.join(sysDir, 'partition'));
  const partitions = isPartition
    ? []
    : fs
        .readdirSync(sysDir)
        .filter((d) => fs.existsSync(path.join(sysDir, d, 'partition')))
        .map((d) => node(path.join(sysDir, d)));
  return {
    ...self,
    path: devicePath,
    sizeBytes: Number(readSys(path.join(sysDir, 'size'))) * 512,
    ...(isPartition ? { disk: node(path.dirname(sysDir)) } : {}),
    partitions,
  };
}

/** Devices stacked on `n` (device-mapper, md RAID, bcache …): their kernel names. */
function holders(n: BlockNode): string[] {
  try {
    return fs.readdirSync(path.join(n.sysDir, 'holders'));
  } catch {
    return [];
  }
}

/** Where `n` is mounted: by device number, or by source path (btrfs shows 0:N numbers). */
function mountsOf(n: BlockNode, mounts: readonly MountEntry[]): MountEntry[] {
  return mounts.filter((m) => m.devNumber === n.devNumber || m.source === `/dev/${n.name}`);
}

/** Kernel names of the devices in use as swap. */
function swapNames(swaps: string): string[] {
  return swaps
    .split('\n')
    .slice(1)
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter((f) => f.startsWith('/dev/'))
    .map((f) => {
      try {
        return path.basename(fs.realpathSync(f));
      } catch {
        return path.basename(f);
      }
    });
}

/**
 * Why the image may not be written onto this device, or undefined when it may: the device, one
 * of its partitions or the disk it is a partition of is mounted, used as swap or held by a stacked
 * device; or it is smaller than the image.
 */
export function deviceRefusal(
  d: BlockDeviceFacts,
  imageSize: number,
  mounts: readonly MountEntry[] = readMountInfo(),
  swaps: string = readSwaps(),
): AmiError | undefined {
  const label = `--device ${d.path}`;
  const refuse = (what: string, hint: string): AmiError => new AmiError(`${label} ${what}`, undefined, hint);
  const swapping = swapNames(swaps);
  const unmount = 'unmount it (and stop what uses it) first, or choose another device';
  const related: [BlockNode, string][] = [
    [d, 'is'],
    ...d.partitions.map((p): [BlockNode, string] => [p, `has a partition, /dev/${p.name}, that is`]),
    ...(d.disk ? [[d.disk, `is a partition of /dev/${d.disk.name}, which is`] as [BlockNode, string]] : []),
  ];
  for (const [n, how] of related) {
    const m = mountsOf(n, mounts)[0];
    if (m) return refuse(`${how} mounted at ${m.mountPoint}`, unmount);
    if (swapping.includes(n.name)) return refuse(`${how} in use as swap`, 'swapoff it first');
    const held = holders(n);
    if (held.length > 0)
      return refuse(
        `${how} in use by ${held.map((h) => `/dev/${h}`).join(', ')} (LVM, RAID or dm-crypt)`,
        unmount,
      );
  }
  if (d.sizeBytes < imageSize)
    return refuse(
      `holds ${d.sizeBytes} bytes (${formatBytes(d.sizeBytes)}) but the image is ${imageSize} bytes (${formatBytes(imageSize)})`,
      'attach a volume at least as large as the image',
    );
  return undefined;
}

function readSwaps(): string {
  try {
    return fs.readFileSync('/proc/swaps', 'utf8');
  } catch {
    return '';
  }
}

/** Inspects `--device` and throws the refusal, if any; returns what it found. */
export function checkDevice(devicePath: string, imageSize: number): BlockDeviceFacts {
  const facts = inspectBlockDevice(devicePath);
  const refusal = deviceRefusal(facts, imageSize);
  if (refusal) throw refusal;
  return facts;
}
