// Retrying S3 requests: exponential back-off with full jitter on 5xx, throttling and network
// errors. `--retry` turns it on (as in ec2-ami-tools, but with a real, growing delay).
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay, type RetryPolicy } from '../backoff.js';
import { isRetryable, toS3Error, type S3Target } from './s3-error.js';

export type { RetryPolicy };

/** ec2-ami-tools' `--retry` allowed 5 attempts; so does amibundle, with back-off between them. */
export const RETRY_ON: RetryPolicy = { attempts: 5, baseDelayMs: 500, maxDelayMs: 20_000 };
export const RETRY_OFF: RetryPolicy = { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 };

export interface RetryHooks {
  readonly signal?: AbortSignal;
  /** Called before each retry (for --debug lines and test counters). */
  readonly onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Extra errors to retry besides the S3/network ones (e.g. a download with a bad digest)… */
  readonly retryIf?: (err: unknown) => boolean;
  /** …and how many attempts those get at least, even when --retry is off. */
  readonly retryIfAttempts?: number;
}

/**
 * Runs one S3 request with the policy; the final failure becomes an S3Error (exit 3) naming the
 * target, unless it already is an AmiError.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  target: S3Target,
  op: (attempt: number) => Promise<T>,
  hooks: RetryHooks = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    hooks.signal?.throwIfAborted();
    try {
      return await op(attempt);
    } catch (err) {
      if (hooks.signal?.aborted) throw hooks.signal.reason;
      const extra = hooks.retryIf?.(err) ?? false;
      const limit = extra ? Math.max(policy.attempts, hooks.retryIfAttempts ?? 0) : policy.attempts;
      if (!(extra || isRetryable(err)) || attempt >= limit) throw toS3Error(err, target, attempt);
      const delay = backoffDelay(policy, attempt - 1);
      hooks.onRetry?.(err, attempt, delay);
      await sleep(delay, undefined, { signal: hooks.signal });
    }
  }
}
