// What amibundle reads from an AWS SDK v3 error, whichever service (S3, EBS, EC2) threw it: the
// HTTP status when a response arrived, and the service's error code or else the network code.
// One home, so S3 and EBS messages and retry decisions agree on what an error is.

export interface SdkErrorShape {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  Message?: string;
  Reason?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
}

/** The error's fields, or none when it is not an object. */
export function sdkErrorShape(err: unknown): SdkErrorShape {
  return typeof err === 'object' && err !== null ? err : {};
}

/** HTTP status of an SDK error, if a response arrived. */
export function httpStatus(err: unknown): number | undefined {
  return sdkErrorShape(err).$metadata?.httpStatusCode;
}

/** The service's error code (`NoSuchBucket`, `AccessDeniedException`), or the network code (`ECONNRESET`). */
export function errorCode(err: unknown): string {
  const e = sdkErrorShape(err);
  if (httpStatus(err) !== undefined) return e.Code ?? e.name ?? 'UnknownError';
  return e.code ?? e.name ?? 'Error';
}

/** Codes (Node's and the SDK's) of a request that got no usable answer: worth another attempt. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'TimeoutError',
  'RequestTimeout',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** The request failed on the way (reset, refused, timed out, hung up), not with an answer. */
export function isNetworkFailure(err: unknown): boolean {
  const e = sdkErrorShape(err);
  return (
    NETWORK_CODES.has(errorCode(err)) ||
    NETWORK_CODES.has(e.name ?? '') ||
    /socket hang up/i.test(e.message ?? '')
  );
}
