// Wall and CPU time of one piece of work in this process. CPU time is the whole process's
// (event loop, libuv pool, zstd workers), so CPU % above 100 means several cores were busy.
export interface Timing {
  readonly seconds: number;
  /** User + system CPU seconds of this process during the work. */
  readonly cpuSeconds: number;
}

export async function timed<T>(work: () => Promise<T>): Promise<Timing & { value: T }> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const value = await work();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { value, seconds, cpuSeconds: (used.user + used.system) / 1e6 };
}

/** Decimal megabytes per second (MB = 10^6 bytes, as disk and network speeds are quoted). */
export function mbPerSecond(bytes: number, seconds: number): number {
  return seconds > 0 ? bytes / 1e6 / seconds : 0;
}
