// The S3 checks: where the credentials come from (never their secret part), and whether the
// bucket exists in the expected region, accepts the chosen ACL, and takes a probe object.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Reporter } from '../events.js';
import type { S3Bucket } from '../s3/bucket.js';
import { md5Base64 } from '../s3/bucket.js';
import { checkCredentials, createAgents, createS3Client, destroyAgents } from '../s3/client.js';
import type { CannedAcl, S3ConnectionConfig } from '../s3/connection.js';
import type { S3Location } from '../s3/location.js';
import { openBucket } from '../s3/open-bucket.js';
import { S3Error } from '../s3/s3-error.js';
import { failedFrom, ok, type CheckResult } from './check.js';

/** An access key id with only its first four and last four characters shown. */
function maskKeyId(id: string): string {
  return id.length > 8 ? `${id.slice(0, 4)}…${id.slice(-4)}` : '…';
}

/** Where the AWS SDK's default chain will find credentials, in the chain's own order. */
function chainSource(env: NodeJS.ProcessEnv): string {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return 'environment (AWS_ACCESS_KEY_ID)';
  const home = os.homedir();
  const files = [
    env.AWS_SHARED_CREDENTIALS_FILE ?? path.join(home, '.aws/credentials'),
    env.AWS_CONFIG_FILE ?? path.join(home, '.aws/config'),
  ];
  if (env.AWS_PROFILE || files.some((f) => fs.existsSync(f)))
    return `profile ${env.AWS_PROFILE ?? 'default'} (shared config/credentials files)`;
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE) return 'web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)';
  if (env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI || env.AWS_CONTAINER_CREDENTIALS_FULL_URI)
    return 'container credentials endpoint';
  return 'instance profile (instance metadata)';
}

export async function checkCredentialSource(conn: S3ConnectionConfig, out: Reporter): Promise<CheckResult> {
  if (conn.credentials !== undefined)
    return ok(
      'credentials',
      `from the command line (-a/-s${conn.credentials.sessionToken ? '/-t' : ''}), access key ${maskKeyId(conn.credentials.accessKeyId)}`,
    );
  const agents = createAgents(1);
  const client = createS3Client(conn, conn.region ?? 'us-east-1', agents);
  try {
    await checkCredentials(client, conn);
    const found = await client.config.credentials();
    return ok(
      'credentials',
      `from the ${chainSource(process.env)}, access key ${maskKeyId(found.accessKeyId)}`,
    );
  } catch (err) {
    out.debug(`credentials: ${(err as Error).message}`);
    return failedFrom('credentials', err);
  } finally {
    client.destroy();
    destroyAgents(agents);
  }
}

const PROBE_BODY = Buffer.from('amibundle doctor probe: safe to delete\n');

/** Server answers that mean the key pair itself is wrong, with a fix that says so. */
function credentialFix(err: unknown): string | undefined {
  if (!(err instanceof S3Error)) return undefined;
  if (err.code === 'SignatureDoesNotMatch')
    return 'the secret access key does not belong to the access key id: check -s/--secret-key or AWS_SECRET_ACCESS_KEY';
  if (err.code === 'InvalidAccessKeyId')
    return 'the access key id is unknown to the server: check -a/--access-key';
  return undefined;
}

export async function checkBucket(
  conn: S3ConnectionConfig,
  target: S3Location,
  acl: CannedAcl,
  out: Reporter,
): Promise<CheckResult[]> {
  let bucket: S3Bucket;
  try {
    bucket = await openBucket(conn, target.bucket, { acl, out });
  } catch (err) {
    const r = failedFrom('bucket', err);
    const fix = credentialFix(err);
    return [fix !== undefined ? { ...r, fix } : r];
  }
  const results: CheckResult[] = [];
  try {
    const acls = acl === 'private' ? 'no ACL needed (--acl private)' : `ACLs enabled (${acl} accepted)`;
    results.push(ok('bucket', `${target.bucket} exists in region ${bucket.region}; ${acls}`));
    const key = `${target.prefix}.amibundle-doctor-${crypto.randomBytes(6).toString('hex')}`;
    try {
      await bucket.put(key, PROBE_BODY, md5Base64(PROBE_BODY), acl);
    } catch (err) {
      const r = failedFrom('bucket-probe', err);
      return [
        ...results,
        {
          ...r,
          message: `writing probe object ${key} with ACL ${acl}: ${r.message}`,
          fix:
            credentialFix(err) ??
            r.fix ??
            'allow s3:PutObject and s3:PutObjectAcl on the bucket for these credentials',
        },
      ];
    }
    try {
      await bucket.deleteKeys([key]);
    } catch (err) {
      const r = failedFrom('bucket-probe', err);
      return [
        ...results,
        {
          ...r,
          message: `probe object ${key} was written but could not be removed: ${r.message}`,
          fix: `allow s3:DeleteObject (delete-bundle needs it) and remove ${key} by hand`,
        },
      ];
    }
    results.push(ok('bucket-probe', `wrote and removed ${key} with ACL ${acl}`));
    return results;
  } finally {
    bucket.close();
  }
}
