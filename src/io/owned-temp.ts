// Temporary files (parts being written, the image being restored, downloads) carry their owner
// in their name: pid, the process's start time (from /proc/self/stat) and the boot id. A run
// killed with SIGKILL cannot remove its own, so the next run for the same destination and name
// removes those whose owner is gone (no such pid, a pid reused by another process, another
// boot) and leaves a live run's alone. Temporaries still listed when the process exits (a forced
// exit after a signal) are removed by a synchronous 'exit' hook.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

interface Owner {
  readonly pid: number;
  /** Clock ticks since boot, field 22 of /proc/PID/stat; '' when /proc is not there. */
  readonly start: string;
  /** First 12 hex digits of /proc/sys/kernel/random/boot_id; '' when unknown. */
  readonly boot: string;
}

/** Field 22 (starttime) of /proc/PID/stat, or undefined when there is no such process. */
function startTimeOf(pid: number | 'self'): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').replace(/-/g, '').trim().slice(0, 12);
  } catch {
    return '';
  }
}

let self: Owner | undefined;
function me(): Owner {
  self ??= { pid: process.pid, start: startTimeOf('self') ?? '', boot: bootId() };
  return self;
}

// `.NAME…amibundle-PID-START-BOOT-RANDOM.tmp` (or `.partial`).
const OWNED = /\.amibundle-(\d+)-(\d*)-([0-9a-f]*)-[0-9a-f]{8}\.(?:tmp|partial)$/;

/** Names longer than this are cut in temporary names, so they stay under NAME_MAX (255). */
const NAME_KEPT = 100;

/**
 * A temporary name in `dir` for `label` (a final file name such as `img.part.3`), beginning with
 * `.NAME.` where NAME is the bundle or image name it belongs to.
 */
export function ownedTempPath(dir: string, label: string, suffix: 'tmp' | 'partial' = 'tmp'): string {
  const o = me();
  const token = `amibundle-${o.pid}-${o.start}-${o.boot}-${crypto.randomBytes(4).toString('hex')}`;
  return path.join(dir, `.${label.slice(0, NAME_KEPT)}.${token}.${suffix}`);
}

const live = new Set<string>();
let hooked = false;

/** Remembers a temporary file to remove if the process exits before it is renamed or removed. */
export function trackTemp(file: string): void {
  live.add(file);
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const f of live) {
        try {
          fs.rmSync(f, { force: true });
        } catch {
          /* exiting: try the next one */
        }
      }
    });
  }
}

/** The file was renamed into place or removed: nothing to do at exit. */
export function untrackTemp(file: string): void {
  live.delete(file);
}

function ownerGone(pid: number, start: string, boot: string): boolean {
  const o = me();
  if (boot !== o.boot) return true;
  if (pid === o.pid) return start !== o.start;
  const now = startTimeOf(pid);
  return now === undefined || now !== start;
}

export interface StaleTemps {
  readonly files: number;
  readonly bytes: number;
}

/**
 * Removes from `dir` the temporaries of `name` (bundle or image name) whose owning process is
 * gone. A missing directory or an unreadable entry is not an error: there is nothing to sweep.
 */
export function removeStaleTemps(dir: string, name: string): StaleTemps {
  const prefix = `.${name.slice(0, NAME_KEPT)}.`;
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return { files: 0, bytes: 0 };
  }
  let files = 0;
  let bytes = 0;
  for (const entry of entries) {
    if (!entry.startsWith(prefix)) continue;
    const m = OWNED.exec(entry);
    if (!m || !ownerGone(Number(m[1]), m[2]!, m[3]!)) continue;
    const file = path.join(dir, entry);
    try {
      const st = fs.lstatSync(file);
      if (!st.isFile()) continue;
      fs.rmSync(file, { force: true });
      files++;
      bytes += st.size;
    } catch {
      /* gone meanwhile, or not ours to remove */
    }
  }
  return { files, bytes };
}

/** The one line saying what removeStaleTemps removed, or undefined when nothing. */
export function describeStale(stale: StaleTemps, dir: string, name: string): string | undefined {
  if (stale.files === 0) return undefined;
  const mib = (stale.bytes / 1048576).toFixed(1);
  const shown = name.replace(/[\x00-\x1f\x7f]/g, '?');
  return `removed ${stale.files} temporary file(s) (${mib} MiB) of '${shown}' in ${dir} left by an earlier run that was killed`;
}

/** removeStaleTemps, with its one line (if any) given to `out`. */
export function sweepStaleTemps(dir: string, name: string, out?: { warn(line: string): void }): void {
  const line = describeStale(removeStaleTemps(dir, name), dir, name);
  if (line) out?.warn(line);
}
