// The image file and the block devices over it: a sparse file created under a temporary name,
// an optional partition table (MBR, or GPT with a BIOS boot partition for GRUB's core image),
// and a loop device with its partition devices. Every step registers its undo.
import fs from 'node:fs';
import path from 'node:path';
import type { Reporter } from '../events.js';
import { AmiError } from '../errors.js';
import type { CleanupStack } from './cleanup-stack.js';
import { MiB } from './size-plan.js';
import { runTool, runToolSync } from '../io/run-tool.js';

export type PartitionScheme = 'mbr' | 'gpt' | 'none';

/** GPT type GUIDs: Linux file system and BIOS boot (where GRUB puts its core image). */
export const GPT_LINUX = '0FC63DAF-8483-4772-8E79-3D69E4772000';
export const GPT_BIOS_BOOT = '21686148-6449-6E6F-744E-656564454649';
/** The root file system starts at 1 MiB (MBR) or 2 MiB (GPT, after the BIOS boot partition). */
export const ROOT_START_SECTOR: Record<Exclude<PartitionScheme, 'none'>, number> = { mbr: 2048, gpt: 4096 };

/** Creates the sparse image file (mode 0600: it holds a whole system) and removes it on failure. */
export async function createImageFile(file: string, sizeMiB: number, cleanup: CleanupStack): Promise<void> {
  const handle = await fs.promises.open(file, 'wx', 0o600);
  cleanup.push(
    `remove ${file}`,
    () => fs.promises.rm(file, { force: true }),
    () => fs.rmSync(file, { force: true }),
  );
  try {
    await handle.truncate(sizeMiB * MiB);
  } finally {
    await handle.close();
  }
}

/**
 * Writes the partition table with sfdisk. The root file system is partition 1 in both schemes
 * (so it is `xvda1`, `sda1` or `nvme0n1p1` on the instance); GPT's BIOS boot partition is
 * partition 2 but sits first on the disk, at 1 MiB.
 */
export async function partitionImage(file: string, scheme: 'mbr' | 'gpt', out?: Reporter): Promise<void> {
  const script =
    scheme === 'mbr'
      ? `label: dos\nstart=${ROOT_START_SECTOR.mbr}, type=83, bootable\n`
      : `label: gpt\n` +
        `start=${ROOT_START_SECTOR.gpt}, type=${GPT_LINUX}, name="Linux"\n` +
        `start=2048, size=2048, type=${GPT_BIOS_BOOT}, name="BIOS boot partition"\n`;
  await runTool('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', file], {
    input: script,
    out,
    what: 'writing the partition table (sfdisk)',
  });
}

export interface LoopDevice {
  /** `/dev/loopN` */
  readonly device: string;
  /** The device holding the file system: the loop device itself, or its partition 1. */
  readonly rootDevice: string;
  /** Detaches now (the clean-up stack would otherwise do it at the end). */
  readonly detach: () => Promise<void>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for the kernel to show partition `n` of a loop device, asking it to when it does not scan. */
async function partitionDevice(loop: string, n: number, out?: Reporter): Promise<string> {
  const name = path.basename(loop);
  const dev = `${loop}p${n}`;
  const sys = `/sys/block/${name}/${name}p${n}`;
  if (!fs.existsSync(sys)) {
    // Kernels without partition-table support (some minimal VMs) never scan: tell them with BLKPG.
    await runTool('partx', ['--add', loop], { out, okCodes: [1], what: 'adding partitions (partx)' });
  }
  for (let i = 0; i < 100; i++) {
    if (fs.existsSync(sys) && fs.existsSync(dev)) return dev;
    await sleep(50);
  }
  throw new AmiError(
    `partition ${n} of ${loop} did not appear as ${dev}`,
    undefined,
    'is udev or devtmpfs running?',
  );
}

/** Attaches the image to a free loop device (with partitions for a disk image). */
export async function attachLoop(
  file: string,
  scheme: PartitionScheme,
  cleanup: CleanupStack,
  out?: Reporter,
): Promise<LoopDevice> {
  const args = ['--find', '--show', ...(scheme === 'none' ? [] : ['--partscan']), file];
  let device = '';
  // Two runs can race for the same free device; losetup then fails with EBUSY: try the next one.
  for (let attempt = 0; ; attempt++) {
    try {
      device = (
        await runTool('losetup', args, { out, what: 'attaching a loop device (losetup)' })
      ).stdout.trim();
      break;
    } catch (err) {
      if (attempt >= 4 || !/busy/i.test(String(err))) throw err;
      await sleep(100 * (attempt + 1));
    }
  }
  if (!device.startsWith('/dev/')) throw new AmiError(`losetup printed no device for ${file}`);
  const detach = cleanup.push(
    `detach ${device}`,
    async () => {
      await runTool('losetup', ['--detach', device], { out, what: `detaching ${device}` });
    },
    () => void runToolSync('losetup', ['--detach', device]),
  );
  const rootDevice = scheme === 'none' ? device : await partitionDevice(device, 1, out);
  if (scheme === 'gpt') await partitionDevice(device, 2, out);
  return { device, rootDevice, detach };
}

/** Gives the finished image its final name without ever replacing a file that appeared there. */
export async function publishImage(temp: string, final: string): Promise<void> {
  try {
    await fs.promises.link(temp, final);
    await fs.promises.unlink(temp);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw new AmiError(
        `the image file ${final} appeared while this run was working`,
        undefined,
        'remove it or choose another -p',
      );
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    // File systems without hard links (vfat destinations): a plain rename, after a last check.
    if (fs.existsSync(final)) throw new AmiError(`the image file ${final} already exists`);
    await fs.promises.rename(temp, final);
  }
}
