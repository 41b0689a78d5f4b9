// Parts straight to S3 as the bundling pipeline produces them: no part touches the disk. Part
// names depend on the part count (their zero-padding), known only at the end, so each part is
// uploaded under a provisional key and, at commit, copied server-side to its final key (S3
// copies without sending the bytes again); the provisional keys are then deleted and the
// manifest stored last. Memory: the part being filled plus at most `concurrency` in flight.
import crypto from 'node:crypto';
import type { Reporter } from '../events.js';
import type { PartDigests, PartSink, PartWriter, StoredPart } from '../parts/part-sink.js';
import { BundleError, describeError } from '../errors.js';
import { md5Base64, md5Base64ToHex, type S3Bucket } from './bucket.js';
import { MAX_PART_BYTES } from '../format/part-name.js';
import type { CannedAcl } from './connection.js';
import { s3Url } from './location.js';
import { forEachLimited, InFlight } from './task-pool.js';

export class S3PartSink implements PartSink {
  readonly description: string;
  private readonly runId = crypto.randomBytes(6).toString('hex');
  private readonly inFlight: InFlight;
  /** Every key this run may have created: what abort() removes. */
  private readonly stored = new Set<string>();
  private committed = false;
  private closed = false;

  constructor(
    private readonly bucket: S3Bucket,
    private readonly prefix: string,
    private readonly acl: CannedAcl,
    private readonly out: Reporter,
  ) {
    this.description = s3Url(bucket.name, prefix);
    this.inFlight = new InFlight(bucket.conn.concurrency);
  }

  /** Provisional keys sit beside the bundle (same permissions), under a name no bundle uses. */
  provisionalKey(index: number): string {
    return `${this.prefix}.amibundle-upload-${this.runId}/part.${index}`;
  }

  /** Requests sent, by operation (for tests and benchmarks). */
  get requests(): ReadonlyMap<string, number> {
    return this.bucket.requests;
  }

  openPart(index: number): Promise<PartWriter> {
    const chunks: Buffer[] = [];
    let size = 0;
    const writer: PartWriter = {
      write: (chunk: Buffer): Promise<void> => {
        size += chunk.length;
        if (size > MAX_PART_BYTES)
          return Promise.reject(new BundleError(`part ${index} is larger than a part can be`));
        chunks.push(chunk);
        return Promise.resolve();
      },
      close: async (digests: PartDigests): Promise<void> => {
        const body = Buffer.concat(chunks, size);
        chunks.length = 0;
        if (body.length !== digests.size)
          throw new BundleError(`part ${index}: ${body.length} bytes written but ${digests.size} reported`);
        const key = this.provisionalKey(index);
        // Waits while `concurrency` uploads run: the pipeline's back-pressure.
        await this.inFlight.start(async () => {
          this.stored.add(key);
          await this.bucket.put(key, body, digests.md5, undefined);
        });
      },
    };
    return Promise.resolve(writer);
  }

  async commit(parts: readonly StoredPart[], manifestFileName: string, manifest: Buffer): Promise<string> {
    await this.inFlight.drain();
    await forEachLimited(
      parts,
      this.bucket.conn.concurrency,
      async (part) => {
        const key = this.prefix + part.filename;
        this.stored.add(key);
        const etag = await this.bucket.copy(this.provisionalKey(part.index), key, this.acl);
        // A plain copy keeps the MD5 ETag; encrypted buckets (SSE-KMS) have other ETags.
        if (/^[0-9a-f]{32}$/.test(etag) && etag !== md5Base64ToHex(part.md5))
          throw new BundleError(
            `part ${key} came out of the server-side copy with ETag ${etag}, not its MD5`,
          );
      },
      this.bucket.signal,
    );
    const provisional = parts.map((p) => this.provisionalKey(p.index));
    await this.bucket.deleteKeys(provisional);
    for (const key of provisional) this.stored.delete(key);
    await this.warnAboutStaleParts(parts);
    const manifestKey = this.prefix + manifestFileName;
    this.stored.add(manifestKey);
    await this.bucket.put(manifestKey, manifest, md5Base64(manifest), this.acl);
    this.committed = true;
    this.close();
    return s3Url(this.bucket.name, manifestKey);
  }

  /** An earlier, larger bundle of the same name leaves parts the new manifest does not name. */
  private async warnAboutStaleParts(parts: readonly StoredPart[]): Promise<void> {
    const first = parts[0];
    if (!first) return;
    const partPrefix = first.filename.replace(/\d+$/, '');
    const current = new Set(parts.map((p) => this.prefix + p.filename));
    const stale = (await this.bucket.listAll(this.prefix + partPrefix)).filter(
      (o) => !current.has(o.key) && /^\d+$/.test(o.key.slice(this.prefix.length + partPrefix.length)),
    );
    if (stale.length > 0)
      this.out.warn(
        `${stale.length} part object(s) of an earlier bundle remain under ${this.description} (e.g. ${stale[0]!.key}); the new manifest does not use them`,
      );
  }

  async abort(): Promise<void> {
    if (this.committed || this.closed) return;
    await this.inFlight.settle();
    const keys = [...this.stored];
    if (keys.length > 0) {
      try {
        // Also after Ctrl-C: clean-up requests must not carry the aborted signal.
        await this.bucket.unsignalled().deleteKeys(keys);
        this.stored.clear();
      } catch (err) {
        this.out.warn(
          `could not remove ${keys.length} object(s) this run stored under ${this.description}: ${describeError(err)}`,
        );
      }
    }
    this.close();
  }

  private close(): void {
    this.closed = true;
    this.bucket.close();
  }
}
