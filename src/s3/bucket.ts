// One bucket, reached in its own region: every object operation amibundle needs, each retried
// per the policy and failing as an S3Error that names the bucket and key.
import crypto from 'node:crypto';
import {
  CopyObjectCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Reporter } from '../events.js';
import { BundleError } from '../errors.js';
import { readCapped } from './capped-body.js';
import { destroyAgents, type Agents } from './client.js';
import type { CannedAcl, S3ConnectionConfig } from './connection.js';
import { withRetry, type RetryHooks, type RetryPolicy } from './retry.js';
import { S3Error, type S3Target } from './s3-error.js';

export interface ListedObject {
  readonly key: string;
  /** ETag without quotes: the hex MD5 for objects stored by a single PUT. */
  readonly etag: string;
  readonly size: number;
}

/** S3's limit per DeleteObjects request. */
export const DELETE_BATCH = 1000;

export function md5Base64ToHex(md5: string): string {
  return Buffer.from(md5, 'base64').toString('hex');
}

/** `private` is what S3 does without an ACL header, and the one form an ACL-less bucket takes. */
function aclParam(acl: CannedAcl | undefined): { ACL?: CannedAcl } {
  return acl !== undefined && acl !== 'private' ? { ACL: acl } : {};
}

export function stripEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '').toLowerCase();
}

export class S3Bucket {
  /** Requests sent, by operation (retries included): what resume and fault tests count. */
  readonly requests = new Map<string, number>();

  constructor(
    readonly client: S3Client,
    readonly name: string,
    readonly region: string,
    readonly conn: S3ConnectionConfig,
    private readonly agents: Agents,
    readonly out: Reporter,
    readonly signal?: AbortSignal,
  ) {}

  get policy(): RetryPolicy {
    return this.conn.retry;
  }

  /** Runs one request with the retry policy, counting attempts and logging retries (--debug). */
  async call<T>(
    op: string,
    key: string | undefined,
    fn: () => Promise<T>,
    hooks: Pick<RetryHooks, 'retryIf' | 'retryIfAttempts'> = {},
  ): Promise<T> {
    const target: S3Target = { op, bucket: this.name, ...(key !== undefined ? { key } : {}) };
    return withRetry(
      this.policy,
      target,
      () => {
        this.requests.set(op, (this.requests.get(op) ?? 0) + 1);
        return fn();
      },
      {
        ...(this.signal ? { signal: this.signal } : {}),
        ...hooks,
        onRetry: (err, attempt, delay) =>
          this.out.debug(
            `${op} ${key ?? this.name}: attempt ${attempt} failed (${(err as Error).name}: ${(err as Error).message}); retrying in ${delay} ms`,
          ),
      },
    );
  }

  /** Options for client.send(): the run's abort signal. */
  get sendOptions(): { abortSignal?: AbortSignal } {
    return this.signal ? { abortSignal: this.signal } : {};
  }

  /** PUT with Content-MD5 (S3 refuses a body that arrived damaged); returns the ETag. */
  async put(key: string, body: Buffer, md5Base64: string, acl: CannedAcl | undefined): Promise<string> {
    return this.call('PutObject', key, async () => {
      const res = await this.client.send(
        new PutObjectCommand({
          Bucket: this.name,
          Key: key,
          Body: body,
          ContentMD5: md5Base64,
          ContentLength: body.length,
          ...aclParam(acl),
        }),
        this.sendOptions,
      );
      return stripEtag(res.ETag);
    });
  }

  /**
   * GET a whole object into memory (parts are 10 MiB). Larger than maxBytes = not a bundle
   * object: refused before reading it, or as soon as the count passes it when no length is sent.
   */
  async get(key: string, maxBytes: number, check?: (body: Buffer) => void): Promise<Buffer> {
    return this.call(
      'GetObject',
      key,
      async () => {
        const res = await this.client.send(
          new GetObjectCommand({ Bucket: this.name, Key: key }),
          this.sendOptions,
        );
        if (res.ContentLength !== undefined && res.ContentLength > maxBytes) {
          (res.Body as { destroy?: () => void } | undefined)?.destroy?.();
          throw new BundleError(
            `${key} in bucket ${this.name} is ${res.ContentLength} bytes: too large for a bundle part or manifest`,
          );
        }
        if (!res.Body) throw new Error(`empty response body for ${key}`);
        const body = await readCapped(res.Body, maxBytes, `${key} in bucket ${this.name}`);
        if (res.ContentLength !== undefined && body.length !== res.ContentLength)
          throw new DamagedDownload(
            `${key} in bucket ${this.name}: ${body.length} bytes arrived of ${res.ContentLength}`,
          );
        check?.(body);
        return body;
      },
      { retryIf: (err) => err instanceof DamagedDownload, retryIfAttempts: DAMAGED_DOWNLOAD_ATTEMPTS },
    );
  }

  async copy(fromKey: string, toKey: string, acl: CannedAcl | undefined): Promise<string> {
    return this.call('CopyObject', toKey, async () => {
      const res = await this.client.send(
        new CopyObjectCommand({
          Bucket: this.name,
          Key: toKey,
          CopySource: `${this.name}/${encodeURIComponent(fromKey).replace(/%2F/g, '/')}`,
          ...aclParam(acl),
        }),
        this.sendOptions,
      );
      return stripEtag(res.CopyObjectResult?.ETag);
    });
  }

  /** Every object under the prefix, page by page (1000 keys a page). */
  async *list(prefix: string): AsyncGenerator<ListedObject[]> {
    let token: string | undefined;
    do {
      const page = await this.call('ListObjectsV2', prefix, () =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, ContinuationToken: token }),
          this.sendOptions,
        ),
      );
      yield (page.Contents ?? []).map((o) => ({
        key: o.Key ?? '',
        etag: stripEtag(o.ETag),
        size: o.Size ?? 0,
      }));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async listAll(prefix: string): Promise<ListedObject[]> {
    const all: ListedObject[] = [];
    for await (const page of this.list(prefix)) all.push(...page);
    return all;
  }

  /** Deletes keys in batches of 1000 (DeleteObjects); a key S3 could not delete is an error. */
  async deleteKeys(keys: readonly string[], onBatch?: (deleted: readonly string[]) => void): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const res = await this.call('DeleteObjects', batch[0], () =>
        this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.name,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
          this.sendOptions,
        ),
      );
      const failed = res.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0]!;
        throw new S3Error(
          `S3 DeleteObjects failed for bucket ${this.name}, key ${first.Key}: ${first.Code ?? 'Error'}${first.Message ? `: ${first.Message}` : ''} (${failed.length} of ${batch.length} keys not deleted)`,
          { op: 'DeleteObjects', bucket: this.name, ...(first.Key ? { key: first.Key } : {}) },
          undefined,
          first.Code ?? 'Error',
        );
      }
      onBatch?.(batch);
    }
  }

  async deleteBucket(): Promise<void> {
    await this.call('DeleteBucket', undefined, () =>
      this.client.send(new DeleteBucketCommand({ Bucket: this.name }), this.sendOptions),
    );
  }

  /** The same bucket for clean-up after an interruption: requests not tied to the run's signal. */
  unsignalled(): S3Bucket {
    return new S3Bucket(this.client, this.name, this.region, this.conn, this.agents, this.out);
  }

  /** Closes the keep-alive sockets so the process can exit. */
  close(): void {
    this.client.destroy();
    destroyAgents(this.agents);
  }
}

/** A download whose bytes differ from what the manifest promised is fetched again this often. */
export const DAMAGED_DOWNLOAD_ATTEMPTS = 3;

/** A download whose bytes do not match what the manifest promised (retried, then exit 254). */
export class DamagedDownload extends BundleError {}

export function md5Base64(data: Buffer): string {
  return crypto.createHash('md5').update(data).digest('base64');
}
