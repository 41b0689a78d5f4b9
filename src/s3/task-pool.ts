// Bounded parallelism for S3 transfers: at most N requests in flight, the first failure stops
// new work and is what the caller sees once the running tasks have settled.

/** Runs fn over items with at most `limit` at once; rejects with the first error. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try {
        signal?.throwIfAborted();
        await fn(items[i]!, i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.err;
}

/**
 * Tasks started one by one by a producer (the bundling pipeline): start() waits while `limit`
 * tasks run, which is the producer's back-pressure; drain() waits for all of them.
 */
export class InFlight {
  private running = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly tasks = new Set<Promise<void>>();
  private failure: { err: unknown } | undefined;

  constructor(private readonly limit: number) {}

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure.err;
  }

  /** Resolves once fn has started; rejects if an earlier task failed. */
  async start(fn: () => Promise<void>): Promise<void> {
    this.throwIfFailed();
    while (this.running >= this.limit) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      this.throwIfFailed();
    }
    this.running++;
    const task: Promise<void> = fn()
      .catch((err: unknown) => {
        this.failure ??= { err };
      })
      .finally(() => {
        this.running--;
        this.tasks.delete(task);
        this.waiters.shift()?.();
      });
    this.tasks.add(task);
  }

  /** Waits for every started task; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.tasks.size > 0) await Promise.all([...this.tasks]);
    this.throwIfFailed();
  }

  /** Waits for running tasks without reporting their failures (before cleaning up). */
  async settle(): Promise<void> {
    while (this.tasks.size > 0) await Promise.all([...this.tasks]);
  }
}
