// How long to wait before retrying a request, for every service amibundle talks to (S3, EBS,
// EC2): exponential back-off with full jitter, so many clients retrying at once spread out.

export interface RetryPolicy {
  /** Attempts per request, the first included. */
  readonly attempts: number;
  /** Delay cap of the first retry; doubles per retry up to maxDelayMs (full jitter below it). */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** The delay before retry number `retry` (0 for the first): uniform below the doubling cap. */
export function backoffDelay(policy: RetryPolicy, retry: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.floor(Math.random() * cap);
}
