// A work directory under /var/tmp for the boot tests (a whole system and its disk images do not
// belong in a small tmpfs /tmp). Releasing it unmounts whatever is mounted below it (a chroot's
// /proc, /sys, /dev), detaches loop devices over files in it, and deletes it only when nothing
// is mounted there any more: a recursive delete through a bind mount of /dev would be a disaster.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseMountInfo } from '../../src/volume/mountinfo.js';
import { loopDevices } from '../volume/support.js';

export const bootWorkRoot = process.env.AMIBUNDLE_BOOT_WORKDIR ?? '/var/tmp';

/** Mount points at or below `dir`, deepest first. */
export function mountsBelow(dir: string): string[] {
  const prefix = `${dir.replace(/\/$/, '')}/`;
  return parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'))
    .map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

/**
 * Unmounts everything at or below `dir` (lazily when busy) and detaches loop devices backed by
 * files below it; returns what is still there.
 */
export function releaseBelow(dir: string): string[] {
  const prefix = `${dir.replace(/\/$/, '')}/`;
  const loops = (): string[] =>
    loopDevices()
      .filter((l) => l.file.startsWith(prefix))
      .map((l) => l.device);
  for (let round = 0; round < 3; round++) {
    for (const m of mountsBelow(dir))
      if (spawnSync('umount', [m]).status !== 0) spawnSync('umount', ['--lazy', m]);
    for (const l of loops()) spawnSync('losetup', ['--detach', l]);
    if (mountsBelow(dir).length === 0 && loops().length === 0) break;
  }
  return [...mountsBelow(dir), ...loops()];
}

/** Removes `dir` recursively, but never while anything is mounted below it. */
export function removeTree(dir: string): void {
  const left = releaseBelow(dir);
  if (left.length > 0)
    throw new Error(`not removing ${dir}: still mounted or attached below it: ${left.join(', ')}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

export class BootScratch {
  readonly dir: string;
  constructor(label: string) {
    this.dir = fs.mkdtempSync(path.join(bootWorkRoot, `amibundle-boot-${label}-`));
  }

  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  mkdir(...parts: string[]): string {
    const p = this.path(...parts);
    fs.mkdirSync(p, { recursive: true });
    return p;
  }

  release(): void {
    removeTree(this.dir);
  }
}
