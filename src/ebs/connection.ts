// How the EBS commands reach EBS direct and EC2, as a plain config the library takes: credentials
// (absent = the SDK's default chain), region, endpoints, parallelism, timeouts and the one retry
// policy. The flags that fill it in live in cli/ebs-flags.ts.

import type { RetryPolicy } from '../backoff.js';

/** The one retry policy of the EBS commands (the SDK's own retries are off: maxAttempts 1). */
export type EbsRetryPolicy = RetryPolicy;

export interface EbsConnectionConfig {
  /** Static credentials; absent = the AWS SDK's default chain (environment, profiles, SSO, IMDS). */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  /** Absent = the SDK's chain (AWS_REGION, the profile's region), else us-east-1. */
  readonly region?: string;
  /** An EBS direct endpoint other than AWS's (a test server); absent = AWS (or AWS_ENDPOINT_URL_EBS). */
  readonly ebsEndpoint?: string;
  /** An EC2 Query endpoint other than AWS's; absent = AWS (or AWS_ENDPOINT_URL_EC2). */
  readonly ec2Endpoint?: string;
  /** Block requests in flight at once; memory is about this many × 512 KiB. */
  readonly concurrency: number;
  /** A request whose connection stays silent this long fails and is retried (stall timeout). */
  readonly timeoutMs: number;
  readonly retry: EbsRetryPolicy;
}

/** EBS direct works in 512 KiB blocks, no other size. */
export const BLOCK_SIZE = 512 * 1024;
export const DEFAULT_EBS_CONCURRENCY = 16;
export const MAX_EBS_CONCURRENCY = 128;
export const DEFAULT_EBS_TIMEOUT_SECONDS = 30;
/** At most 10 s to open a connection, less when --timeout is shorter. */
export const MAX_CONNECT_TIMEOUT_MS = 10_000;
/**
 * 6 attempts, 250 ms doubling to 8 s with full jitter: a request that keeps failing gives up
 * after at most ~16 s of waiting (about half that on average). Throttling at the per-snapshot
 * request limit clears well within that when the in-flight count is bounded.
 */
export const DEFAULT_EBS_RETRY: EbsRetryPolicy = { attempts: 6, baseDelayMs: 250, maxDelayMs: 8_000 };
