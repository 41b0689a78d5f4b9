// How the S3 commands reach S3, as a plain config the library takes (credentials, region,
// endpoint, retries, parallelism), and the facts about AWS's region names it relies on. The flags
// that fill it in live in cli/s3-flags.ts.
import type { RetryPolicy } from './retry.js';

export interface S3ConnectionConfig {
  /** Static credentials from -a/-s/-t; absent = the AWS SDK's default chain. */
  readonly credentials?: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
  };
  /** Region asked for (--region, --location or an AWS --url); absent = found from the bucket. */
  readonly region?: string;
  /** The flag the region came from, for messages. */
  readonly regionSource?: string;
  /** An S3-compatible endpoint (path-style addressing); absent = AWS. */
  readonly endpoint?: string;
  readonly retry: RetryPolicy;
  /** Requests in flight at once. */
  readonly concurrency: number;
  /** A request whose connection stays idle this long fails (and is retried). */
  readonly timeoutMs: number;
}

export const DEFAULT_CONCURRENCY = 8;
export const DEFAULT_TIMEOUT_SECONDS = 60;
export const CANNED_ACLS = ['aws-exec-read', 'public-read', 'private'] as const;
export type CannedAcl = (typeof CANNED_ACLS)[number];

/** AWS's own S3 host names carry the region: `s3-us-west-2.amazonaws.com`, `s3.eu-west-1.amazonaws.com.cn`. */
export function regionOfAwsHost(host: string): string | undefined {
  const h = host.toLowerCase();
  if (!/\.amazonaws\.com(\.cn)?$/.test(h)) return undefined;
  if (h === 's3.amazonaws.com' || h === 's3-external-1.amazonaws.com') return 'us-east-1';
  const labels = h.split('.');
  const first = labels[0] ?? '';
  if (first.startsWith('s3-')) return first.slice(3);
  if (first === 's3' && labels.length >= 4) return labels[1];
  return undefined;
}

/** EU and US are the legacy names of eu-west-1 and us-east-1 (bucket locations and --location). */
export function regionOfLocation(location: string | undefined | null): string {
  if (!location || location === 'US') return 'us-east-1';
  if (location === 'EU') return 'eu-west-1';
  return location;
}
