// delete-bundle: the objects of one bundle, chosen by its manifest (a local file or the one in
// S3) or by listing a name prefix (every page of it), removed with batched DeleteObjects after a
// confirmation; the manifest goes first so a half-deleted bundle is never registrable.
import path from 'node:path';
import type { Reporter } from '../events.js';
import { MAX_MANIFEST_BYTES } from '../format/manifest-reader.js';
import { parseNamed, readManifestFile } from '../format/manifest-file.js';
import { orderedParts } from './bundle-parts.js';
import type { S3ConnectionConfig } from './connection.js';
import { s3Url, type S3Location } from './location.js';
import { openBucket } from './open-bucket.js';

export type DeleteSelection =
  | { readonly kind: 'local-manifest'; readonly path: string }
  | { readonly kind: 's3-manifest'; readonly name: string }
  | { readonly kind: 'prefix'; readonly prefix: string };

export interface DeleteBundleOptions {
  readonly target: S3Location;
  readonly select: DeleteSelection;
  /** Remove the bucket afterwards (it must then be empty). */
  readonly clear?: boolean;
  /** Asked once with the list shown; resolves false to delete nothing. */
  readonly confirm: (question: string) => Promise<boolean>;
  readonly connection: S3ConnectionConfig;
  readonly out: Reporter;
  readonly signal?: AbortSignal;
}

export interface DeleteBundleResult {
  /** Names relative to the key prefix. */
  readonly deleted: readonly string[];
  readonly bucketRemoved: boolean;
}

/** What `-p NAME` selects: NAME.part.N, NAME.manifest and NAME.manifest.xml, nothing else. */
export function isBundleObjectName(name: string, prefix: string): boolean {
  if (!name.startsWith(prefix)) return false;
  return /^(\.part\.\d+|\.manifest|\.manifest\.xml)$/.test(name.slice(prefix.length));
}

export async function deleteBundle(opts: DeleteBundleOptions): Promise<DeleteBundleResult> {
  const { out, target, select } = opts;
  const bucket = await openBucket(opts.connection, target.bucket, {
    out,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  try {
    // Names relative to the key prefix; manifests first.
    let manifests: string[] = [];
    let parts: string[] = [];
    if (select.kind === 'prefix') {
      for await (const page of bucket.list(target.prefix + select.prefix)) {
        for (const o of page) {
          const name = o.key.slice(target.prefix.length);
          if (!isBundleObjectName(name, select.prefix)) continue;
          (name.slice(select.prefix.length).startsWith('.manifest') ? manifests : parts).push(name);
        }
      }
    } else {
      const manifestName = select.kind === 'local-manifest' ? path.basename(select.path) : select.name;
      const parsed =
        select.kind === 'local-manifest'
          ? readManifestFile(select.path)
          : parseNamed(
              await bucket.get(target.prefix + manifestName, MAX_MANIFEST_BYTES),
              s3Url(target.bucket, target.prefix + manifestName),
            );
      manifests = [manifestName];
      parts = orderedParts(parsed).map((p) => p.filename);
    }
    const names = [...manifests, ...parts];
    let deleted: string[] = [];
    if (names.length === 0) out.info('No files to delete.');
    else {
      out.info('Deleting files:');
      for (const n of names) out.info(`   - ${n}`);
      const where = s3Url(target.bucket, target.prefix);
      if (await opts.confirm(`${names.length} objects will be deleted from ${where}`)) {
        const report = (batch: readonly string[]): void => {
          for (const key of batch) out.info(`Deleted ${key.slice(target.prefix.length)}`);
          deleted = deleted.concat(batch.map((k) => k.slice(target.prefix.length)));
        };
        await bucket.deleteKeys(
          manifests.map((n) => target.prefix + n),
          report,
        );
        await bucket.deleteKeys(
          parts.map((n) => target.prefix + n),
          report,
        );
      } else out.info('Nothing deleted.');
    }
    let bucketRemoved = false;
    if (opts.clear) {
      out.info(`Attempting to delete bucket ${target.bucket}...`);
      await bucket.deleteBucket();
      bucketRemoved = true;
    }
    out.event({ type: 'done', command: 'delete-bundle', deleted: deleted.length, bucketRemoved });
    return { deleted, bucketRemoved };
  } finally {
    bucket.close();
  }
}
