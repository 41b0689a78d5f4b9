// How big the image must be: a walk of what will be copied (allocated blocks, hard links counted
// once, inodes), then the image size with headroom, within EC2's 10 GiB instance-store limit
// unless --size says otherwise.
import fs from 'node:fs';
import path from 'node:path';
import { AmiError, ExitCode } from '../errors.js';
import type { PrunedPath } from './copy-rules.js';
import { EC2_ROOT_LIMIT_MIB } from '../ec2-limits.js';

export const MiB = 1024 * 1024;
/** mkfs.xfs refuses file systems smaller than 300 MB. */
const XFS_MIN_MIB = 512;
const EXT_MIN_MIB = 64;
/** Room for the partition table and the BIOS boot partition (1 MiB gap, 1 MiB partition). */
export const DISK_OVERHEAD_MIB = 3;

export interface DataEstimate {
  /** Bytes allocated by everything that will be copied. */
  readonly bytes: number;
  /** Files, directories, links and special files that will be copied. */
  readonly inodes: number;
}

/** Walks the volume as rsync will (skipping pruned paths), summing allocated blocks. */
export async function estimateData(
  volume: string,
  pruned: readonly PrunedPath[],
  signal?: AbortSignal,
): Promise<DataEstimate> {
  const skip = new Set(pruned.filter((p) => !p.contentsOnly).map((p) => p.path));
  const noDescend = new Set(pruned.filter((p) => p.contentsOnly).map((p) => p.path));
  const seen = new Set<string>();
  let bytes = 0;
  let inodes = 0;
  const rootStat = await fs.promises.lstat(volume);
  bytes += rootStat.blocks * 512;
  inodes++;

  // A few directories at a time: enough to hide lstat latency, few enough to stay polite.
  let running = 0;
  const waiting: (() => void)[] = [];
  const acquire = async (): Promise<void> => {
    if (running < 16) {
      running++;
      return;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };

  const visit = async (rel: string): Promise<string[]> => {
    const subdirs: string[] = [];
    let dir: fs.Dir;
    try {
      dir = await fs.promises.opendir(path.join(volume, rel));
    } catch {
      return subdirs; // unreadable or vanished: rsync will report it
    }
    for await (const entry of dir) {
      const child = rel === '/' ? `/${entry.name}` : `${rel}/${entry.name}`;
      if (skip.has(child)) continue;
      let st: fs.Stats;
      try {
        st = await fs.promises.lstat(path.join(volume, child));
      } catch {
        continue;
      }
      if (st.nlink > 1 && !st.isDirectory()) {
        const id = `${st.dev}:${st.ino}`;
        if (seen.has(id)) continue;
        seen.add(id);
      }
      bytes += st.blocks * 512;
      inodes++;
      if (st.isDirectory() && !noDescend.has(child)) subdirs.push(child);
    }
    return subdirs;
  };

  const walk = async (rel: string): Promise<void> => {
    if (signal?.aborted) throw signal.reason as Error;
    await acquire();
    let subdirs: string[];
    try {
      subdirs = await visit(rel);
    } finally {
      release();
    }
    await Promise.all(subdirs.map(walk));
  };
  await walk('/');
  return { bytes, inodes };
}

export interface SizeDecision {
  readonly sizeMiB: number;
  /** Inode count to ask mke2fs for, when its default would be too few. */
  readonly inodes?: number;
  readonly message: string;
}

function roundUp(n: number, step: number): number {
  return Math.ceil(n / step) * step;
}

/**
 * The image size: the data, file-system overhead (inode tables, journal or log), then a quarter
 * more plus 256 MiB so the new instance has room to work. Over 10 GiB it is capped when the data
 * still fits, and refused when it does not (unless --size was given).
 */
export function chooseImageSize(
  est: DataEstimate,
  fsType: string,
  partitioned: boolean,
  requestedMiB: number | undefined,
): SizeDecision {
  const dataMiB = est.bytes / MiB;
  const needMiB = dataMiB * 1.05 + (est.inodes * 512) / MiB + 96 + (partitioned ? DISK_OVERHEAD_MIB : 0);
  const minMiB = fsType === 'xfs' ? XFS_MIN_MIB : EXT_MIN_MIB;
  const inodesWanted = Math.ceil(est.inodes * 1.3) + 4096;
  const inodesFor = (sizeMiB: number): number | undefined =>
    /^ext/.test(fsType) && (sizeMiB * MiB) / 16384 < inodesWanted ? inodesWanted : undefined;
  const dataText = `${Math.ceil(dataMiB)} MiB of data in ${est.inodes} files`;

  if (requestedMiB !== undefined) {
    if (requestedMiB < minMiB)
      throw new AmiError(
        `--size ${requestedMiB} is too small for a ${fsType} file system`,
        ExitCode.usage,
        `give at least ${minMiB}`,
      );
    const inodes = inodesFor(requestedMiB);
    let message = `Image size: ${requestedMiB} MiB (--size; ${dataText} to copy)`;
    if (requestedMiB < needMiB)
      message += `; that may be too small: about ${Math.ceil(needMiB)} MiB are needed`;
    if (requestedMiB > EC2_ROOT_LIMIT_MIB)
      message += `; over EC2's ${EC2_ROOT_LIMIT_MIB} MiB limit for instance-store AMIs, so EC2 will refuse to register it`;
    return { sizeMiB: requestedMiB, ...(inodes ? { inodes } : {}), message };
  }

  const wanted = Math.max(minMiB, roundUp(needMiB * 1.25 + 256, 64));
  if (wanted <= EC2_ROOT_LIMIT_MIB) {
    const inodes = inodesFor(wanted);
    return {
      sizeMiB: wanted,
      ...(inodes ? { inodes } : {}),
      message: `Image size: ${wanted} MiB (${dataText}, plus headroom; -s/--size to choose)`,
    };
  }
  if (needMiB <= EC2_ROOT_LIMIT_MIB * 0.97) {
    const inodes = inodesFor(EC2_ROOT_LIMIT_MIB);
    return {
      sizeMiB: EC2_ROOT_LIMIT_MIB,
      ...(inodes ? { inodes } : {}),
      message: `Image size: ${EC2_ROOT_LIMIT_MIB} MiB, capped at EC2's instance-store limit (${dataText}; little room is left)`,
    };
  }
  throw new AmiError(
    `the volume holds ${dataText}, which needs about ${Math.ceil(needMiB)} MiB: more than EC2's ${EC2_ROOT_LIMIT_MIB} MiB limit for instance-store AMIs`,
    ExitCode.runtime,
    'leave data out with -e, or give -s/--size to make a larger image anyway',
  );
}
