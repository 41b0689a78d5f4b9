// Wall and CPU time of one piece of work in this process. CPU time is the whole process's
// (event loop, libuv pool, zstd workers), so CPU % above 100 means several cores were busy.
//
// CPU % alone cannot tell a slow stage from a busy machine: on a shared machine the pool threads
// can be ready to run and still wait for a core that another process holds, and the stage then
// reads as one core's worth of CPU. Linux counts that waiting per thread (schedstat's run-queue
// time), so it is measured alongside and reported, where the kernel provides it.
import fs from 'node:fs';

export interface Timing {
  readonly seconds: number;
  /** User + system CPU seconds of this process during the work. */
  readonly cpuSeconds: number;
  /**
   * Seconds this process's threads were ready to run but waited for a CPU during the work (the
   * sum over threads; Linux schedstat). Absent where the kernel does not count it.
   */
  readonly waitSeconds?: number;
}

/** Run-queue wait (ns) of every thread of this process now, by thread id; undefined without schedstat. */
function threadWaits(): Map<string, number> | undefined {
  let tids: string[];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return undefined;
  }
  const waits = new Map<string, number>();
  for (const tid of tids) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1');
    } catch {
      continue; // the thread exited, or this kernel has no schedstat
    }
    const wait = Number(text.split(' ')[1]);
    if (Number.isFinite(wait)) waits.set(tid, wait);
  }
  return waits.size > 0 ? waits : undefined;
}

/** Run-queue wait between two snapshots, in seconds; threads started in between count from zero. */
function waitBetween(before: Map<string, number>, after: Map<string, number>): number {
  let ns = 0;
  for (const [tid, wait] of after) ns += Math.max(0, wait - (before.get(tid) ?? 0));
  return ns / 1e9;
}

export async function timed<T>(work: () => Promise<T>): Promise<Timing & { value: T }> {
  const waits = threadWaits();
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const value = await work();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  const waitsAfter = waits && threadWaits();
  return {
    value,
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    ...(waits && waitsAfter ? { waitSeconds: waitBetween(waits, waitsAfter) } : {}),
  };
}

/** Decimal megabytes per second (MB = 10^6 bytes, as disk and network speeds are quoted). */
export function mbPerSecond(bytes: number, seconds: number): number {
  return seconds > 0 ? bytes / 1e6 / seconds : 0;
}
