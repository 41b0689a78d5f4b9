// S3 failures as one line a person can act on: operation, bucket, key, HTTP status and S3 error
// code (servers such as radosgw send no message text), plus what to do. Exit code 3.
import { AmiError, ExitCode } from '../errors.js';
import { errorCode, httpStatus, isNetworkFailure, sdkErrorShape } from '../sdk-error.js';

export interface S3Target {
  /** The S3 API operation, e.g. `PutObject`. */
  readonly op: string;
  readonly bucket: string;
  readonly key?: string;
}

export class S3Error extends AmiError {
  override readonly name = 'S3Error';
  constructor(
    message: string,
    readonly target: S3Target,
    readonly status: number | undefined,
    readonly code: string,
    hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, ExitCode.s3, hint, options);
  }
}

const RETRYABLE_S3_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequests',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'InternalError',
  'ServiceUnavailable',
  'BadDigest',
  'IncompleteBody',
  'OperationAborted',
]);

/** 5xx, throttling and network failures are worth another attempt; other 4xx are not. */
export function isRetryable(err: unknown): boolean {
  const status = httpStatus(err);
  const code = errorCode(err);
  if (status === undefined) {
    const e = sdkErrorShape(err);
    if (e.name === 'CredentialsProviderError' || e.name === 'AbortError') return false;
    return isNetworkFailure(err);
  }
  return status >= 500 || status === 429 || RETRYABLE_S3_CODES.has(code);
}

const NETWORK_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  TimeoutError: 'timed out',
  EPIPE: 'connection closed while sending',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

function hintFor(code: string, status: number | undefined, target: S3Target): string | undefined {
  switch (code) {
    case 'SignatureDoesNotMatch':
      return 'the secret key does not match the access key: check -s/--secret-key (or the credentials the SDK found)';
    case 'InvalidAccessKeyId':
      return 'the access key is unknown to the server: check -a/--access-key (or the credentials the SDK found)';
    case 'ExpiredToken':
    case 'TokenRefreshRequired':
      return 'the session token has expired: get fresh credentials';
    case 'AccessDenied':
      return `the credentials may not ${target.op} in bucket ${target.bucket}: check the IAM policy and the bucket policy`;
    case 'NoSuchBucket':
      return `bucket ${target.bucket} does not exist: check -b/--bucket and --region`;
    case 'NoSuchKey':
    case 'NotFound':
      return 'the object does not exist: check -b/--bucket, the key prefix and the manifest name';
    case 'AccessControlListNotSupported':
      return 'the bucket has ACLs disabled (Object Ownership: bucket owner enforced); EC2 needs aws-exec-read: enable ACLs on the bucket (Object Ownership: object writer)';
    case 'InvalidArgument':
      return target.op === 'PutObject' || target.op === 'CopyObject'
        ? 'the server refused a request header; S3-compatible servers often refuse the aws-exec-read ACL: try --acl public-read or --acl private'
        : undefined;
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return 'the bucket is in another region: give its region with --region';
    case 'BucketAlreadyExists':
      return 'bucket names are shared by all AWS accounts: choose another bucket name';
    case 'BucketNotEmpty':
      return 'the bucket still holds other objects; --clear only removes an empty bucket';
    case 'RequestTimeTooSkewed':
      return "this machine's clock is wrong: fix the time (e.g. with NTP)";
    default:
      if (status === undefined)
        return 'check the network, the endpoint (--url/--region) and that the server is up';
      if (status >= 500) return 'the server failed: try again later (--retry retries with back-off)';
      return undefined;
  }
}

/** Turns whatever the SDK threw into an S3Error (exit 3) naming the request. */
export function toS3Error(err: unknown, target: S3Target, attempts: number): AmiError {
  if (err instanceof AmiError) return err;
  const status = httpStatus(err);
  const code = errorCode(err);
  const where = `bucket ${target.bucket}${target.key !== undefined ? `, key ${target.key}` : ''}`;
  const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
  const e = sdkErrorShape(err);
  let what: string;
  if (status !== undefined) {
    const text = e.message && e.message !== 'UnknownError' && e.message !== code ? `: ${e.message}` : '';
    what = `HTTP ${status} ${code}${text}`;
  } else {
    const net = NETWORK_TEXT[code] ?? NETWORK_TEXT[e.name ?? ''];
    what = `no response, ${net ? `${net} (${code})` : code}${e.message && !net ? `: ${e.message}` : ''}`;
  }
  return new S3Error(
    `S3 ${target.op} failed for ${where}: ${what}${tries}`,
    target,
    status,
    code,
    hintFor(code, status, target),
    {
      cause: err,
    },
  );
}
