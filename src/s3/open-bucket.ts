// Reaching a bundle's bucket before moving any data: credentials, the bucket's region (given, or
// asked of the bucket), creation when uploading, and the checks that save an hour of confusion:
// a bucket in another region than requested (exit 10; an S3-compatible server's own zone name is
// not one) and a bucket whose ACLs are disabled.
import {
  CreateBucketCommand,
  GetBucketLocationCommand,
  GetBucketOwnershipControlsCommand,
  HeadBucketCommand,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import type { Reporter } from '../events.js';
import { AmiError, ExitCode } from '../errors.js';
import { S3Bucket } from './bucket.js';
import { checkCredentials, createAgents, createS3Client, type Agents } from './client.js';
import { regionOfLocation, type CannedAcl, type S3ConnectionConfig } from './connection.js';
import { errorCode, httpStatus } from '../sdk-error.js';
import { S3Error } from './s3-error.js';

export interface OpenBucketOptions {
  /** Create the bucket when it does not exist (uploads). */
  readonly create?: boolean;
  /** ACL the objects will carry: anything but private needs ACLs enabled on the bucket. */
  readonly acl?: CannedAcl;
  readonly out: Reporter;
  readonly signal?: AbortSignal;
}

const DEFAULT_REGION = 'us-east-1';

/** AWS region names: `us-east-1`, `us-gov-west-1`, `cn-north-1`, `us-isob-east-1`, `eusc-de-east-1`. */
export function isAwsRegionName(name: string): boolean {
  return /^[a-z]{2,4}(-[a-z]+)?-[a-z]+-\d{1,2}$/.test(name);
}

/** What to do with the region a bucket reports: sign for it (maybe with a warning), or refuse. */
export type RegionVerdict =
  { readonly region: string; readonly warning?: string } | { readonly mismatch: AmiError };

/**
 * The bucket's reported region against the one we asked in. A requested region that differs is a
 * mismatch (exit 10) on AWS. An S3-compatible server (--url) answers with its own zone name
 * (Ceph radosgw installs `default`): a name that is not an AWS region there is the server's name
 * for where the bucket is, not another region, so it is used, with one warning when it differs
 * from --region.
 */
export function regionForBucket(
  conn: Pick<S3ConnectionConfig, 'region' | 'regionSource' | 'endpoint'>,
  bucket: string,
  reported: string | undefined,
  current: string,
): RegionVerdict {
  if (reported === undefined || reported === current) return { region: current };
  if (conn.region === undefined) return { region: reported };
  if (conn.endpoint !== undefined && !isAwsRegionName(reported))
    return {
      region: reported,
      warning: `bucket ${bucket} reports location '${reported}' (not an AWS region name) at ${conn.endpoint}; using it instead of ${conn.region} (${conn.regionSource ?? '--region'})`,
    };
  return {
    mismatch: new AmiError(
      `bucket ${bucket} is in region ${reported}, but ${conn.region} was requested (${conn.regionSource ?? '--region'})`,
      ExitCode.regionMismatch,
      `run again with --region ${reported}, or choose a bucket in ${conn.region}`,
    ),
  };
}

/** Whether the bucket exists and, when it can be told, its region. */
type Whereabouts =
  { readonly exists: false } | { readonly exists: true; readonly region: string | undefined };

/** The bucket's region from GetBucketLocation, falling back to HeadBucket. */
async function findBucket(bucket: S3Bucket): Promise<Whereabouts> {
  try {
    const res = await bucket.call('GetBucketLocation', undefined, () =>
      bucket.client.send(new GetBucketLocationCommand({ Bucket: bucket.name }), bucket.sendOptions),
    );
    return { exists: true, region: regionOfLocation(res.LocationConstraint) };
  } catch (err) {
    if (!(err instanceof S3Error)) throw err;
    if (err.code === 'NoSuchBucket') return { exists: false };
    // Some policies allow the objects but not s3:GetBucketLocation: HeadBucket still tells.
    if (err.code !== 'AccessDenied' && err.code !== 'MethodNotAllowed' && err.code !== 'NotImplemented')
      throw err;
    bucket.out.debug(`GetBucketLocation refused (${err.code}); asking HeadBucket`);
  }
  try {
    const head = await bucket.client.send(new HeadBucketCommand({ Bucket: bucket.name }), bucket.sendOptions);
    return { exists: true, region: head.BucketRegion };
  } catch (err) {
    if (httpStatus(err) === 404) return { exists: false };
    return { exists: true, region: undefined };
  }
}

/** EC2 reads bundles through the aws-exec-read ACL; a bucket with ACLs disabled refuses it. */
async function checkAclsEnabled(bucket: S3Bucket, acl: CannedAcl): Promise<void> {
  let ownership: string | undefined;
  try {
    const res = await bucket.client.send(
      new GetBucketOwnershipControlsCommand({ Bucket: bucket.name }),
      bucket.sendOptions,
    );
    ownership = res.OwnershipControls?.Rules?.[0]?.ObjectOwnership;
  } catch (err) {
    // Not set (ACLs enabled, the pre-2023 default), not implemented, or not allowed to ask.
    bucket.out.debug(`GetBucketOwnershipControls: ${errorCode(err)}`);
    return;
  }
  if (ownership === 'BucketOwnerEnforced')
    throw new AmiError(
      `bucket ${bucket.name} has ACLs disabled (Object Ownership: BucketOwnerEnforced), so it refuses the ${acl} ACL${acl === 'aws-exec-read' ? ' that EC2 needs to read the bundle' : ''}`,
      ExitCode.s3,
      `enable ACLs: aws s3api put-bucket-ownership-controls --bucket ${bucket.name} --ownership-controls 'Rules=[{ObjectOwnership=ObjectWriter}]' (or in the console: Permissions, Object Ownership, ACLs enabled), then run again`,
    );
}

async function createBucket(bucket: S3Bucket): Promise<void> {
  bucket.out.info('Creating bucket...');
  try {
    await bucket.call('CreateBucket', undefined, () =>
      bucket.client.send(
        new CreateBucketCommand({
          Bucket: bucket.name,
          // ObjectWriter keeps ACLs enabled: EC2 needs aws-exec-read on every object.
          ObjectOwnership: 'ObjectWriter',
          ...(bucket.region !== DEFAULT_REGION
            ? { CreateBucketConfiguration: { LocationConstraint: bucket.region as BucketLocationConstraint } }
            : {}),
        }),
        bucket.sendOptions,
      ),
    );
  } catch (err) {
    // A retry of a create that went through, or a race with another uploader: fine.
    if (err instanceof S3Error && err.code === 'BucketAlreadyOwnedByYou') return;
    throw err;
  }
}

/**
 * Opens the bucket in its region. Exit 10 when the bucket is in another AWS region than
 * --region/--location asked; exit 3 when it is missing (and not to be created) or refuses ACLs.
 */
export async function openBucket(
  conn: S3ConnectionConfig,
  bucket: string,
  opts: OpenBucketOptions,
): Promise<S3Bucket> {
  const agents: Agents = createAgents(conn.concurrency);
  const inRegion = (region: string): S3Bucket =>
    new S3Bucket(createS3Client(conn, region, agents), bucket, region, conn, agents, opts.out, opts.signal);
  let handle = inRegion(conn.region ?? DEFAULT_REGION);
  try {
    await checkCredentials(handle.client, conn);
    const found = await findBucket(handle);
    let created = false;
    if (!found.exists) {
      if (!opts.create)
        throw new S3Error(
          `bucket ${bucket} does not exist (HTTP 404 NoSuchBucket)`,
          { op: 'GetBucketLocation', bucket },
          404,
          'NoSuchBucket',
          'check -b/--bucket, --region and --url',
        );
      await createBucket(handle);
      created = true;
    } else {
      const verdict = regionForBucket(conn, bucket, found.region, handle.region);
      if ('mismatch' in verdict) throw verdict.mismatch;
      if (verdict.warning !== undefined) opts.out.warn(verdict.warning);
      if (verdict.region !== handle.region) {
        opts.out.debug(`bucket ${bucket} is in ${verdict.region}`);
        handle.client.destroy();
        handle = inRegion(verdict.region);
      }
    }
    if (!created && opts.acl !== undefined && opts.acl !== 'private')
      await checkAclsEnabled(handle, opts.acl);
    return handle;
  } catch (err) {
    handle.close();
    throw err;
  }
}
