// How long a pipeline stage had work in flight: the union of its work intervals, so that eight
// threadpool jobs overlapping for one second count one second, not eight. What is left of the
// wall time is the stage waiting, for input or for room downstream. The restore reports these per
// stage (the bench prints them) so a slow run says which stage it waited on, measured inside the
// real command rather than modelled beside it. One hrtime read per begin/end: cheap next to the
// megabyte of work each one brackets.

export class BusyClock {
  private inFlight = 0;
  private since = 0n;
  private busyNs = 0n;

  /** One unit of work starts (units may overlap). */
  begin(): void {
    if (this.inFlight++ === 0) this.since = process.hrtime.bigint();
  }

  /** One unit of work ends. */
  end(): void {
    if (this.inFlight === 0) return;
    if (--this.inFlight === 0) this.busyNs += process.hrtime.bigint() - this.since;
  }

  /**
   * Brackets `work()` from its call (work a fallback does synchronously counts too) until its
   * promise settles, either way.
   */
  async time<T>(work: () => Promise<T>): Promise<T> {
    this.begin();
    try {
      return await work();
    } finally {
      this.end();
    }
  }

  /** Brackets synchronous work. */
  timeSync<T>(work: () => T): T {
    this.begin();
    try {
      return work();
    } finally {
      this.end();
    }
  }

  /** Busy seconds so far (a unit still in flight counts up to now). */
  get seconds(): number {
    const open = this.inFlight > 0 ? process.hrtime.bigint() - this.since : 0n;
    return Number(this.busyNs + open) / 1e9;
  }
}
