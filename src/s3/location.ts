// Where a bundle lives in S3: `-b BUCKET[/PREFIX]` and `s3://BUCKET/PREFIX[/NAME.manifest.xml]`
// parsed into a bucket, a key prefix ('' or ending in '/') and, for URLs naming a manifest, its key.
import { UsageError } from '../errors.js';

export interface S3Location {
  readonly bucket: string;
  /** Key prefix: empty, or ending with `/`. */
  readonly prefix: string;
  /** The manifest's full key, when the URL names one (`…/NAME.manifest.xml`). */
  readonly key?: string;
}

/** S3's own rule for bucket names, loosened to what S3-compatible servers accept (`_`, capitals). */
const BUCKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$/;

function splitPath(text: string, what: string): { bucket: string; rest: string[] } {
  const trimmed = text.replace(/^\/+|\/+$/g, '');
  const pieces = trimmed.split('/');
  const bucket = pieces[0] ?? '';
  if (!BUCKET_NAME.test(bucket))
    throw new UsageError(
      `${what} has invalid value '${text}': '${bucket}' is not a bucket name`,
      'bucket names are 3 to 255 letters, digits, dots, hyphens or underscores',
    );
  const rest = pieces.slice(1);
  if (rest.some((p) => p === '' || p === '.' || p === '..'))
    throw new UsageError(
      `${what} has invalid value '${text}': empty, '.' or '..' path components are not allowed`,
    );
  return { bucket, rest };
}

/** `-b BUCKET[/PREFIX…]` as ec2-ami-tools reads it, refusing `a//b` (which it silently kept). */
export function parseBucketArg(text: string, what = '--bucket'): S3Location {
  const { bucket, rest } = splitPath(text, what);
  return { bucket, prefix: rest.length > 0 ? `${rest.join('/')}/` : '' };
}

/**
 * `s3://BUCKET/PREFIX` (a place to put a bundle) or `s3://BUCKET/PREFIX/NAME.manifest.xml` (a
 * bundle to read): the last component names a manifest when it ends with `.manifest.xml`.
 */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/(.+)$/i.exec(url);
  if (!m) throw new UsageError(`'${url}' is not an S3 URL`, 'write it as s3://BUCKET/PREFIX');
  const { bucket, rest } = splitPath(m[1]!, `'${url}'`);
  const last = rest[rest.length - 1];
  if (last !== undefined && last.endsWith('.manifest.xml') && !url.endsWith('/')) {
    const dirs = rest.slice(0, -1);
    const prefix = dirs.length > 0 ? `${dirs.join('/')}/` : '';
    return { bucket, prefix, key: prefix + last };
  }
  return { bucket, prefix: rest.length > 0 ? `${rest.join('/')}/` : '' };
}

/** `s3://bucket/key` for messages. */
export function s3Url(bucket: string, key = ''): string {
  return `s3://${bucket}/${key}`;
}

/** A name given with -m/-p that becomes part of a key: a plain name, as the reference demands. */
export function checkPlainName(value: string, option: string): string {
  if (value.includes('/'))
    throw new UsageError(`${option} has invalid value '${value}': '/' character not allowed.`);
  if (value === '' || value === '.' || value === '..')
    throw new UsageError(`${option} has invalid value '${value}': not a name`);
  return value;
}
