// The pure pieces of the S3 side: bucket and URL arguments, regions, which keys -p selects,
// which failures are retried and how they read, and the bounded task runners.
import { describe, expect, it } from 'vitest';
import { regionOfAwsHost, regionOfLocation } from '../../src/s3/connection.js';
import { isBundleObjectName } from '../../src/s3/delete-bundle.js';
import { parseBucketArg, parseS3Url } from '../../src/s3/location.js';
import { isAwsRegionName, regionForBucket } from '../../src/s3/open-bucket.js';
import { backoffDelay } from '../../src/backoff.js';
import { RETRY_ON, withRetry } from '../../src/s3/retry.js';
import { isRetryable, toS3Error } from '../../src/s3/s3-error.js';
import { forEachLimited, InFlight } from '../../src/s3/task-pool.js';

/** An error shaped like the AWS SDK's for an HTTP response. */
function sdkError(name: string, status: number, message = 'UnknownError'): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
}

function networkError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:9`), { code, $metadata: {} });
}

describe('bucket and URL arguments', () => {
  it('-b BUCKET[/PREFIX] as ec2-ami-tools reads it', () => {
    expect(parseBucketArg('bkt')).toEqual({ bucket: 'bkt', prefix: '' });
    expect(parseBucketArg('/bkt/a/b/')).toEqual({ bucket: 'bkt', prefix: 'a/b/' });
    expect(() => parseBucketArg('bkt//x')).toThrow("--bucket has invalid value 'bkt//x'");
    expect(() => parseBucketArg('bkt/../x')).toThrow('not allowed');
    expect(() => parseBucketArg('a')).toThrow("'a' is not a bucket name");
  });

  it('s3:// URLs: a place for a bundle, or a manifest', () => {
    expect(parseS3Url('s3://bkt')).toEqual({ bucket: 'bkt', prefix: '' });
    expect(parseS3Url('s3://bkt/images/v1')).toEqual({ bucket: 'bkt', prefix: 'images/v1/' });
    expect(parseS3Url('s3://bkt/images/v1/my.manifest.xml')).toEqual({
      bucket: 'bkt',
      prefix: 'images/v1/',
      key: 'images/v1/my.manifest.xml',
    });
    expect(parseS3Url('s3://bkt/top.manifest.xml')).toEqual({
      bucket: 'bkt',
      prefix: '',
      key: 'top.manifest.xml',
    });
    expect(() => parseS3Url('https://bkt/x')).toThrow("'https://bkt/x' is not an S3 URL");
  });
});

describe('regions', () => {
  it('AWS endpoint host names carry their region; other hosts do not', () => {
    expect(regionOfAwsHost('s3.amazonaws.com')).toBe('us-east-1');
    expect(regionOfAwsHost('s3-external-1.amazonaws.com')).toBe('us-east-1');
    expect(regionOfAwsHost('s3-us-west-2.amazonaws.com')).toBe('us-west-2');
    expect(regionOfAwsHost('s3.eu-central-1.amazonaws.com')).toBe('eu-central-1');
    expect(regionOfAwsHost('s3.cn-north-1.amazonaws.com.cn')).toBe('cn-north-1');
    expect(regionOfAwsHost('127.0.0.1')).toBeUndefined();
    expect(regionOfAwsHost('minio.example.com')).toBeUndefined();
  });

  it('legacy bucket locations', () => {
    expect(regionOfLocation('')).toBe('us-east-1');
    expect(regionOfLocation(undefined)).toBe('us-east-1');
    expect(regionOfLocation('US')).toBe('us-east-1');
    expect(regionOfLocation('EU')).toBe('eu-west-1');
    expect(regionOfLocation('ap-south-1')).toBe('ap-south-1');
  });
});

describe("the bucket's reported region against the requested one", () => {
  const aws = { region: 'us-east-1', regionSource: '--region' };
  const rgw = { ...aws, endpoint: 'http://127.0.0.1:7480' };

  it('AWS region names, and names S3-compatible servers use that are not', () => {
    for (const r of [
      'us-east-1',
      'eu-west-1',
      'us-gov-west-1',
      'cn-north-1',
      'us-isob-east-1',
      'ap-southeast-5',
    ])
      expect(isAwsRegionName(r)).toBe(true);
    for (const r of ['default', 'zonegroup-a', 'US', 'EU', 'us-east', 'local'])
      expect(isAwsRegionName(r)).toBe(false);
  });

  it('on AWS, a bucket in another region than --region is exit 10 naming both', () => {
    const v = regionForBucket(aws, 'b', 'eu-west-1', 'us-east-1');
    expect('mismatch' in v && v.mismatch.exitCode).toBe(10);
    expect('mismatch' in v && v.mismatch.message).toBe(
      'bucket b is in region eu-west-1, but us-east-1 was requested (--region)',
    );
    // Even a name that is no AWS region: only an S3-compatible endpoint has zone names.
    expect('mismatch' in regionForBucket(aws, 'b', 'default', 'us-east-1')).toBe(true);
  });

  it('with --url, a location that is no AWS region name is used as reported, with one warning', () => {
    expect(regionForBucket(rgw, 'b', 'default', 'us-east-1')).toEqual({
      region: 'default',
      warning:
        "bucket b reports location 'default' (not an AWS region name) at http://127.0.0.1:7480; using it instead of us-east-1 (--region)",
    });
    // An AWS region name that differs is still a mismatch, on any endpoint.
    expect('mismatch' in regionForBucket(rgw, 'b', 'eu-west-1', 'us-east-1')).toBe(true);
  });

  it('no --region: the reported region is used silently; the same region: nothing to say', () => {
    expect(regionForBucket({}, 'b', 'default', 'us-east-1')).toEqual({ region: 'default' });
    expect(regionForBucket({}, 'b', 'eu-west-1', 'us-east-1')).toEqual({ region: 'eu-west-1' });
    expect(regionForBucket(aws, 'b', 'us-east-1', 'us-east-1')).toEqual({ region: 'us-east-1' });
    expect(regionForBucket(rgw, 'b', undefined, 'us-east-1')).toEqual({ region: 'us-east-1' });
  });
});

describe('delete-bundle -p selection', () => {
  it('NAME.part.N, NAME.manifest and NAME.manifest.xml only', () => {
    for (const k of ['img.part.0', 'img.part.0123', 'img.manifest', 'img.manifest.xml'])
      expect(isBundleObjectName(k, 'img')).toBe(true);
    for (const k of [
      'img.part.',
      'img.part.x',
      'img.partial',
      'imgx.part.1',
      'img.manifest.xml.bak',
      'other',
    ])
      expect(isBundleObjectName(k, 'img')).toBe(false);
  });
});

describe('retries and error lines', () => {
  it('5xx, throttling and network failures are retried; other 4xx are not', () => {
    expect(isRetryable(sdkError('InternalError', 500))).toBe(true);
    expect(isRetryable(sdkError('ServiceUnavailable', 503))).toBe(true);
    expect(isRetryable(sdkError('SlowDown', 503))).toBe(true);
    expect(isRetryable(sdkError('TooManyRequests', 429))).toBe(true);
    expect(isRetryable(sdkError('RequestTimeout', 400))).toBe(true);
    expect(isRetryable(networkError('ECONNRESET'))).toBe(true);
    expect(isRetryable(networkError('ECONNREFUSED'))).toBe(true);
    expect(isRetryable(sdkError('SignatureDoesNotMatch', 403))).toBe(false);
    expect(isRetryable(sdkError('NoSuchBucket', 404))).toBe(false);
    expect(isRetryable(sdkError('InvalidArgument', 400))).toBe(false);
  });

  it('an S3 failure is one line: operation, bucket, key, status, code (and the server text if any), exit 3', () => {
    const e = toS3Error(
      sdkError('AccessDenied', 403),
      { op: 'PutObject', bucket: 'b', key: 'p/x.part.1' },
      5,
    );
    expect(e.exitCode).toBe(3);
    expect(e.message).toBe(
      'S3 PutObject failed for bucket b, key p/x.part.1: HTTP 403 AccessDenied (after 5 attempts)',
    );
    expect(e.hint).toContain('IAM policy');
    const withText = toS3Error(
      sdkError('SlowDown', 503, 'Please reduce your request rate.'),
      { op: 'PutObject', bucket: 'b', key: 'k' },
      1,
    );
    expect(withText.message).toBe(
      'S3 PutObject failed for bucket b, key k: HTTP 503 SlowDown: Please reduce your request rate.',
    );
    const net = toS3Error(networkError('ECONNREFUSED'), { op: 'GetObject', bucket: 'b', key: 'k' }, 2);
    expect(net.message).toBe(
      'S3 GetObject failed for bucket b, key k: no response, connection refused (ECONNREFUSED) (after 2 attempts)',
    );
  });

  it('back-off grows (with jitter) and is capped', () => {
    for (let i = 0; i < 200; i++) {
      expect(backoffDelay(RETRY_ON, 0)).toBeLessThan(RETRY_ON.baseDelayMs);
      expect(backoffDelay(RETRY_ON, 3)).toBeLessThan(RETRY_ON.baseDelayMs * 8);
      expect(backoffDelay(RETRY_ON, 30)).toBeLessThan(RETRY_ON.maxDelayMs);
    }
  });

  it('withRetry: retries what is retryable up to the policy, stops at once on the rest', async () => {
    const policy = { attempts: 4, baseDelayMs: 1, maxDelayMs: 2 };
    let calls = 0;
    await expect(
      withRetry(policy, { op: 'PutObject', bucket: 'b', key: 'k' }, () => {
        calls++;
        return Promise.reject(sdkError('InternalError', 500));
      }),
    ).rejects.toThrow('HTTP 500 InternalError (after 4 attempts)');
    expect(calls).toBe(4);
    calls = 0;
    await expect(
      withRetry(policy, { op: 'PutObject', bucket: 'b', key: 'k' }, () => {
        calls++;
        return Promise.reject(sdkError('AccessDenied', 403));
      }),
    ).rejects.toThrow('HTTP 403 AccessDenied');
    expect(calls).toBe(1);
    calls = 0;
    const value = await withRetry(policy, { op: 'GetObject', bucket: 'b' }, () =>
      ++calls < 3 ? Promise.reject(networkError('ECONNRESET')) : Promise.resolve('ok'),
    );
    expect([value, calls]).toEqual(['ok', 3]);
  });
});

describe('bounded parallelism', () => {
  it('forEachLimited never runs more than the limit and reports the first failure after the rest settle', async () => {
    let running = 0;
    let peak = 0;
    const settled: number[] = [];
    await expect(
      forEachLimited(
        Array.from({ length: 20 }, (_, i) => i),
        3,
        async (i) => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((r) => setTimeout(r, 5));
          running--;
          settled.push(i);
          if (i === 7) throw new Error('seven');
        },
      ),
    ).rejects.toThrow('seven');
    expect(peak).toBe(3);
    expect(running).toBe(0);
    expect(settled.length).toBeLessThan(20);
  });

  it('InFlight: start() waits while the limit runs; a failure surfaces on the next start() and on drain()', async () => {
    const pool = new InFlight(2);
    const gates: (() => void)[] = [];
    const task =
      (fail = false) =>
      () =>
        new Promise<void>((resolve, reject) =>
          gates.push(() => (fail ? reject(new Error('boom')) : resolve())),
        );
    await pool.start(task());
    await pool.start(task(true));
    let third = false;
    const starting = pool.start(task()).then(() => (third = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(third).toBe(false);
    gates[1]!(); // the failing one ends
    await expect(starting).rejects.toThrow('boom');
    gates[0]!();
    await expect(pool.drain()).rejects.toThrow('boom');
  });
});
