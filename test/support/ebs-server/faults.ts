// What a test can make the EBS/EC2 test server do wrong, and what it counts. Faults are queued
// per action (or for any action) and consumed one request at a time; throttling is a token bucket
// per class of call (block calls per snapshot, other EBS calls, EC2 calls) refilled at the
// configured rate, so a client sending faster than that gets the throttling error AWS documents.

export type FaultKind =
  | { kind: 'status'; status: number }
  | { kind: 'reset' }
  | { kind: 'stall'; ms: number }
  | { kind: 'hold'; until: () => boolean; maxMs: number }
  | { kind: 'corrupt' };

interface QueuedFault {
  readonly action: string | undefined;
  remaining: number;
  readonly fault: FaultKind;
}

export interface ThrottleRates {
  /** PutSnapshotBlock + GetSnapshotBlock per snapshot, per second (RequestThrottledException). */
  blockPerSecond?: number | undefined;
  /** Other EBS direct calls per second (ThrottlingException). */
  ebsPerSecond?: number | undefined;
  /** EC2 Query calls per second (RequestLimitExceeded). */
  ec2PerSecond?: number | undefined;
}

class Bucket {
  private tokens: number;
  private last = Date.now();
  /** A second's worth of requests may come at once (at least one). */
  private readonly burst: number;

  constructor(private readonly rate: number) {
    this.burst = Math.max(1, rate);
    this.tokens = this.burst;
  }

  take(now = Date.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export interface Counters {
  /** Requests seen per action (every request, whatever its answer). */
  readonly requests: Record<string, number>;
  /** Requests answered with a throttling error, per action. */
  readonly throttled: Record<string, number>;
  /** Requests a queued fault was applied to, per action. */
  readonly faulted: Record<string, number>;
  /** Request body bytes received, in total and per action. */
  bytesReceived: number;
  readonly bytesPerAction: Record<string, number>;
  /** Response body bytes of GetSnapshotBlock sent. */
  blockBytesSent: number;
  /** Per action: when requests arrived and were answered, and how many were open at once. */
  readonly timeline: Record<string, ActionTimeline>;
}

/** Times are performance.timeOrigin + performance.now() (ms), comparable across the process. */
export interface ActionTimeline {
  /** The first request's arrival (its head, before its body). */
  first: number;
  /** The last answer's end (or its connection's close). */
  last: number;
  /** Requests arrived and not yet answered, now and at most. */
  open: number;
  maxOpen: number;
}

const now = (): number => performance.timeOrigin + performance.now();

export class Faults {
  private queue: QueuedFault[] = [];
  private readonly denied = new Set<string>();
  private rates: ThrottleRates = {};
  private buckets = new Map<string, Bucket>();
  readonly counters: Counters = {
    requests: {},
    throttled: {},
    faulted: {},
    bytesReceived: 0,
    bytesPerAction: {},
    blockBytesSent: 0,
    timeline: {},
  };

  /** The next `count` requests (of `action`, or of any action) are answered with this HTTP status (500 or 503). */
  failNext(count: number, status = 500, action?: string): void {
    this.queue.push({ action, remaining: count, fault: { kind: 'status', status } });
  }

  /** The next `count` requests have their connection reset instead of an answer. */
  resetNext(count: number, action?: string): void {
    this.queue.push({ action, remaining: count, fault: { kind: 'reset' } });
  }

  /** The next `count` requests are never answered; their connection is dropped after `ms` (Infinity: held until close()). */
  stallNext(count: number, ms: number, action?: string): void {
    this.queue.push({ action, remaining: count, fault: { kind: 'stall', ms } });
  }

  /** The next `count` requests are answered only once `until()` holds (checked every 5 ms), or after `maxMs`. */
  holdNext(count: number, until: () => boolean, maxMs: number, action?: string): void {
    this.queue.push({ action, remaining: count, fault: { kind: 'hold', until, maxMs } });
  }

  /** The next `count` GetSnapshotBlock answers carry one flipped byte (the checksum header stays that of the true data). */
  corruptNext(count: number): void {
    this.queue.push({ action: 'GetSnapshotBlock', remaining: count, fault: { kind: 'corrupt' } });
  }

  /** Every request of this action gets AccessDenied until allow(). */
  deny(action: string): void {
    this.denied.add(action);
  }

  allow(action: string): void {
    this.denied.delete(action);
  }

  isDenied(action: string): boolean {
    return this.denied.has(action);
  }

  setThrottle(rates: ThrottleRates): void {
    this.rates = { ...rates };
    this.buckets = new Map();
  }

  /** Removes queued faults, denials and throttling (counters stay). */
  clear(): void {
    this.queue = [];
    this.denied.clear();
    this.setThrottle({});
  }

  /** Takes the next queued fault that applies to this action, if any (corruption only when asked for). */
  take(action: string, corruptOnly = false): FaultKind | undefined {
    for (const q of this.queue) {
      if (q.remaining <= 0) continue;
      if (q.action !== undefined && q.action !== action) continue;
      if ((q.fault.kind === 'corrupt') !== corruptOnly) continue;
      q.remaining -= 1;
      this.queue = this.queue.filter((x) => x.remaining > 0);
      if (!corruptOnly) this.counters.faulted[action] = (this.counters.faulted[action] ?? 0) + 1;
      return q.fault;
    }
    return undefined;
  }

  /** false when the request is over its class's rate (and so gets a throttling error). */
  admit(cls: 'block' | 'ebs' | 'ec2', key: string): boolean {
    const rate =
      cls === 'block'
        ? this.rates.blockPerSecond
        : cls === 'ebs'
          ? this.rates.ebsPerSecond
          : this.rates.ec2PerSecond;
    if (rate === undefined || rate <= 0) return true;
    const id = `${cls}:${key}`;
    let b = this.buckets.get(id);
    if (!b) {
      b = new Bucket(rate);
      this.buckets.set(id, b);
    }
    return b.take();
  }

  count(action: string, bytes: number): void {
    this.counters.requests[action] = (this.counters.requests[action] ?? 0) + 1;
    this.counters.bytesReceived += bytes;
    this.counters.bytesPerAction[action] = (this.counters.bytesPerAction[action] ?? 0) + bytes;
  }

  /** A request of `action` arrived; it stays open until `res` closes (the bench's and the window tests' view). */
  arrived(action: string, res: { once(event: 'close', f: () => void): unknown }): void {
    const t = (this.counters.timeline[action] ??= { first: now(), last: 0, open: 0, maxOpen: 0 });
    t.open++;
    t.maxOpen = Math.max(t.maxOpen, t.open);
    res.once('close', () => {
      t.open--;
      t.last = now();
    });
  }

  countThrottled(action: string): void {
    this.counters.throttled[action] = (this.counters.throttled[action] ?? 0) + 1;
  }
}
