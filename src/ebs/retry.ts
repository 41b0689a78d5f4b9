// The one retry layer of the EBS commands (the SDK's own is off, see clients.ts): bounded
// attempts, exponential back-off with full jitter, and a classification that retries only what
// another attempt can fix. Retried: HTTP 5xx; the throttling codes AWS documents
// (RequestThrottledException on the EBS direct block calls, ThrottlingException on the others,
// EC2's RequestLimitExceeded, plus 429/503 SlowDown-style answers); dropped, refused, reset and
// stalled connections; and the one validation error AWS lists as retryable, "Failed to read
// block data". Never retried: AccessDenied and every other 4xx, credential failures, aborts.
// "Not found" is retried only where the caller says the resource may not exist yet (the window
// right after StartSnapshot).
import { setTimeout as sleep } from 'node:timers/promises';
import { AmiError, ExitCode } from '../errors.js';
import type { EbsRetryPolicy } from './connection.js';
import { backoffDelay } from '../backoff.js';
import { errorCode, httpStatus, isNetworkFailure, sdkErrorShape } from '../sdk-error.js';

export type Failure =
  /** Slow down and try again. */
  | 'throttled'
  /** The service failed (5xx) or asked for another try. */
  | 'server'
  /** No answer: reset, refused, timed out, stalled. */
  | 'network'
  /** The resource is unknown; maybe not yet (eventual consistency). */
  | 'not-found'
  /** Another attempt cannot help: access denied, validation, credentials, abort. */
  | 'fatal';

function messageOf(err: unknown): string {
  const e = sdkErrorShape(err);
  return e.message ?? e.Message ?? '';
}

const THROTTLE_CODES = new Set([
  'RequestThrottledException',
  'ThrottlingException',
  'Throttling',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'SlowDown',
  // EBS direct: too many API requests in flight for the account; clears like throttling.
  'ConcurrentLimitExceededException',
]);

const NOT_FOUND_CODES = new Set([
  'ResourceNotFoundException',
  'InvalidSnapshot.NotFound',
  'InvalidAMIID.NotFound',
]);

/** AWS documents this ValidationException of the block calls as retryable. */
const RETRYABLE_VALIDATION = /failed to read block data/i;

export function classify(err: unknown): Failure {
  const e = sdkErrorShape(err);
  const status = httpStatus(err);
  const code = errorCode(err);
  if (e.name === 'AbortError') return 'fatal';
  if (status === undefined) {
    if (e.name === 'CredentialsProviderError') return 'fatal';
    if (isNetworkFailure(err)) return 'network';
    if (/socket hang up|ECONNRESET|premature close|aborted/i.test(messageOf(err))) return 'network';
    return 'fatal';
  }
  if (THROTTLE_CODES.has(code) || status === 429) return 'throttled';
  if (code === 'ValidationException') return RETRYABLE_VALIDATION.test(messageOf(err)) ? 'server' : 'fatal';
  if (NOT_FOUND_CODES.has(code)) return 'not-found';
  if (status >= 500) return 'server';
  return 'fatal';
}

/** What the failing request was about, for the one-line message. */
export interface EbsTarget {
  /** The API operation, e.g. `PutSnapshotBlock`. */
  readonly op: string;
  readonly snapshotId?: string;
  readonly block?: number;
  readonly imageId?: string;
}

export class EbsError extends AmiError {
  override readonly name = 'EbsError';
  constructor(
    message: string,
    readonly target: EbsTarget,
    readonly status: number | undefined,
    readonly code: string,
    readonly attempts: number,
    hint?: string,
    options?: { cause?: unknown },
  ) {
    // Exit 3, as for S3: an AWS request failed after its retries.
    super(message, ExitCode.s3, hint, options);
  }
}

const EBS_DIRECT_OPS = new Set([
  'StartSnapshot',
  'PutSnapshotBlock',
  'CompleteSnapshot',
  'ListSnapshotBlocks',
  'ListChangedBlocks',
  'GetSnapshotBlock',
]);

function hintFor(code: string, failure: Failure, target: EbsTarget): string | undefined {
  if (/AccessDenied|UnauthorizedOperation/.test(code))
    return `the credentials may not call ${target.op}: allow ${EBS_DIRECT_OPS.has(target.op) ? 'ebs' : 'ec2'}:${target.op} in the IAM policy (and use of the KMS key, for encrypted snapshots)`;
  if (/ExpiredToken|RequestExpired/.test(code)) return 'the session token has expired: get fresh credentials';
  if (/UnrecognizedClient|InvalidClientTokenId|AuthFailure|InvalidSignature|SignatureDoesNotMatch/.test(code))
    return 'the credentials are not valid: check the access key and secret key (or the profile the SDK found)';
  if (failure === 'network')
    return 'check the network, the endpoint (--endpoint-url/--region), or raise --timeout';
  if (failure === 'throttled') return 'lower --concurrency, or try again later';
  if (failure === 'server') return 'the service failed: try again later';
  return undefined;
}

/** Turns whatever the SDK threw into an EbsError (exit 3) naming the request. */
export function toEbsError(err: unknown, target: EbsTarget, attempts: number): AmiError {
  if (err instanceof AmiError) return err;
  const status = httpStatus(err);
  const code = errorCode(err);
  const failure = classify(err);
  const where = [
    target.snapshotId !== undefined ? `snapshot ${target.snapshotId}` : undefined,
    target.block !== undefined ? `block ${target.block}` : undefined,
    target.imageId !== undefined ? `image ${target.imageId}` : undefined,
  ]
    .filter((s) => s !== undefined)
    .join(', ');
  const msg = messageOf(err);
  const text = msg && msg !== code && msg !== 'UnknownError' ? `: ${msg}` : '';
  const what = status !== undefined ? `HTTP ${status} ${code}${text}` : `no response, ${code}${text}`;
  const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
  return new EbsError(
    `${target.op} failed${where ? ` for ${where}` : ''}: ${what}${tries}`,
    target,
    status,
    code,
    attempts,
    hintFor(code, failure, target),
    { cause: err },
  );
}

export interface EbsRetryHooks {
  readonly signal?: AbortSignal;
  /** Retry "not found" too: the resource was just created and may not be visible yet. */
  readonly notFoundMayClear?: boolean;
  /** How to take an error the operation raises itself (corrupt data: 'server'); else classify(). */
  readonly classifyAs?: (err: unknown) => Failure | undefined;
  /** Called before each retry (--debug lines, counters). */
  readonly onRetry?: (err: unknown, failure: Failure, attempt: number, delayMs: number) => void;
}

/**
 * Runs one request under the policy. The operation gets the attempt number; each attempt is a
 * fresh request (bodies are buffers, so resending is safe). The final failure becomes an
 * EbsError naming the request and the attempts made.
 */
export async function withEbsRetry<T>(
  policy: EbsRetryPolicy,
  target: EbsTarget,
  op: (attempt: number) => Promise<T>,
  hooks: EbsRetryHooks = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    hooks.signal?.throwIfAborted();
    try {
      return await op(attempt);
    } catch (err) {
      if (hooks.signal?.aborted) throw hooks.signal.reason;
      const failure = hooks.classifyAs?.(err) ?? classify(err);
      const retryable = failure === 'not-found' ? hooks.notFoundMayClear === true : failure !== 'fatal';
      if (!retryable || attempt >= policy.attempts) throw toEbsError(err, target, attempt);
      const delay = backoffDelay(policy, attempt - 1);
      hooks.onRetry?.(err, failure, attempt, delay);
      await sleep(delay, undefined, { signal: hooks.signal });
    }
  }
}
