// Entry points for `bundle-image --upload s3://…` and `unbundle --from s3://….manifest.xml`:
// parse the URL, reach the bucket, and hand back a PartSink or PartSource. Streaming cannot
// resume, so its requests are always retried with back-off, whatever the connection says.
import type { Reporter } from '../events.js';
import { UsageError } from '../errors.js';
import { MAX_MANIFEST_BYTES } from '../format/manifest-reader.js';
import { parseNamed } from '../format/manifest-file.js';
import type { CannedAcl, S3ConnectionConfig } from './connection.js';
import { parseS3Url, s3Url } from './location.js';
import { openBucket } from './open-bucket.js';
import { S3PartSink } from './s3-part-sink.js';
import { S3PartSource } from './s3-part-source.js';
import { RETRY_ON } from './retry.js';

export interface StreamingContext {
  readonly out: Reporter;
  readonly signal?: AbortSignal;
}

function streamingConnection(conn: S3ConnectionConfig): S3ConnectionConfig {
  return { ...conn, retry: RETRY_ON };
}

/** `--upload s3://BUCKET/PREFIX`: a sink storing the parts and the manifest there. */
export async function openS3PartSink(
  connection: S3ConnectionConfig,
  acl: CannedAcl,
  url: string,
  ctx: StreamingContext,
): Promise<S3PartSink> {
  const where = parseS3Url(url);
  if (where.key !== undefined)
    throw new UsageError(
      `--upload takes the place to put the bundle, s3://BUCKET/PREFIX, not a manifest key ('${url}')`,
    );
  const bucket = await openBucket(streamingConnection(connection), where.bucket, {
    create: true,
    acl,
    out: ctx.out,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  return new S3PartSink(bucket, where.prefix, acl, ctx.out);
}

/**
 * `--from s3://BUCKET/PREFIX/NAME.manifest.xml`: fetches and parses the manifest (available as
 * `source.manifest`) and returns a source reading the parts beside it.
 */
export async function openS3PartSource(
  connection: S3ConnectionConfig,
  url: string,
  ctx: StreamingContext,
): Promise<S3PartSource> {
  const where = parseS3Url(url);
  if (where.key === undefined)
    throw new UsageError(
      `--from must name the manifest: s3://BUCKET/PREFIX/NAME.manifest.xml (got '${url}')`,
    );
  const conn = streamingConnection(connection);
  const bucket = await openBucket(conn, where.bucket, {
    out: ctx.out,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  try {
    const raw = await bucket.get(where.key, MAX_MANIFEST_BYTES);
    const manifest = parseNamed(raw, s3Url(where.bucket, where.key));
    return new S3PartSource(bucket, where.prefix, manifest, where.key, conn.concurrency);
  } catch (err) {
    bucket.close();
    throw err;
  }
}
