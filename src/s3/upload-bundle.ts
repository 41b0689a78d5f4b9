// upload-bundle: parts in parallel with Content-MD5, resume by skipping parts already stored
// with the same MD5, the manifest last and only once every part is stored.
import fs from 'node:fs';
import path from 'node:path';
import type { Reporter } from '../events.js';
import { BundleError, MissingFileError } from '../errors.js';
import type { ManifestPart } from '../format/manifest.js';
import { md5Base64, md5Base64ToHex, type ListedObject, type S3Bucket } from './bucket.js';
import { sha1HexSync } from '../io/async-sha1.js';
import { readManifestFile } from '../format/manifest-file.js';
import { kindOf, notRegular, readRegular } from '../io/safe-open.js';
import { MAX_PART_BYTES } from '../format/part-name.js';
import { commonPrefix, orderedParts } from './bundle-parts.js';
import type { CannedAcl, S3ConnectionConfig } from './connection.js';
import type { S3Location } from './location.js';
import { openBucket } from './open-bucket.js';
import { forEachLimited } from './task-pool.js';

export interface UploadBundleOptions {
  readonly manifestPath: string;
  /** Directory holding the parts; default: the manifest's directory. */
  readonly partsDir?: string;
  readonly target: S3Location;
  readonly connection: S3ConnectionConfig;
  readonly acl: CannedAcl;
  /** ec2-ami-tools' --part N: parts with a lower index are skipped. */
  readonly fromPart?: number;
  readonly skipManifest?: boolean;
  readonly out: Reporter;
  readonly signal?: AbortSignal;
}

export interface UploadBundleResult {
  readonly manifestKey?: string;
  readonly uploaded: readonly string[];
  /** Parts already in S3 with the same MD5 (resume) or below --part. */
  readonly skipped: readonly string[];
  readonly bytesSent: number;
  readonly seconds: number;
  /** Requests sent by operation, retries included. */
  readonly requests: ReadonlyMap<string, number>;
}

interface LocalPart {
  readonly part: ManifestPart;
  readonly file: string;
  readonly size: number;
}

function statParts(parts: readonly ManifestPart[], dir: string): LocalPart[] {
  const missing: string[] = [];
  const found: LocalPart[] = [];
  for (const part of parts) {
    const file = path.join(dir, part.filename);
    try {
      const st = fs.lstatSync(file);
      if (!st.isFile()) throw notRegular('part file', file, kindOf(st));
      if (st.size > MAX_PART_BYTES)
        throw new BundleError(
          `part ${file} is ${st.size} bytes; bundle parts are at most ${MAX_PART_BYTES / 1024 / 1024} MiB`,
        );
      found.push({ part, file, size: st.size });
    } catch (err) {
      if (err instanceof BundleError) throw err;
      missing.push(file);
    }
  }
  if (missing.length > 0)
    throw new MissingFileError(
      `part file ${missing[0]} named by the manifest is missing${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`,
      'point -d/--directory at the directory holding the bundle parts',
    );
  return found;
}

/** What uploading the parts did, part by part. */
interface PartsOutcome {
  readonly uploaded: string[];
  readonly skipped: string[];
  bytesSent: number;
}

/**
 * Every part in parallel (at most --concurrency at once): skipped below --part or when S3 holds
 * it already with the same MD5, else checked against the manifest's SHA-1 and stored.
 */
async function uploadParts(
  bucket: S3Bucket,
  parts: readonly LocalPart[],
  stored: ReadonlyMap<string, ListedObject>,
  opts: UploadBundleOptions,
): Promise<PartsOutcome> {
  const { out, target } = opts;
  const outcome: PartsOutcome = { uploaded: [], skipped: [], bytesSent: 0 };
  const totalBytes = parts.reduce((n, p) => n + p.size, 0);
  let bytesDone = 0;
  const progress = (): void =>
    out.progress({
      phase: `upload (${outcome.uploaded.length + outcome.skipped.length}/${parts.length} parts)`,
      done: bytesDone,
      total: totalBytes,
      unit: 'bytes',
    });

  await forEachLimited(
    parts,
    opts.connection.concurrency,
    async ({ part, file, size }) => {
      const key = target.prefix + part.filename;
      if (opts.fromPart !== undefined && part.index < opts.fromPart) {
        out.info(`Skipping ${part.filename}`);
        outcome.skipped.push(part.filename);
        bytesDone += size;
        return;
      }
      const data = await readRegular(file, 'part file', MAX_PART_BYTES);
      const sha1 = sha1HexSync(data);
      if (sha1 !== part.digest)
        throw new BundleError(
          `part file ${file} does not match the manifest (SHA-1 ${sha1}, manifest says ${part.digest}); nothing damaged was uploaded`,
          'the bundle is damaged: bundle the image again',
        );
      const md5 = md5Base64(data);
      const there = stored.get(key);
      if (there && there.etag === md5Base64ToHex(md5) && there.size === data.length) {
        out.info(`Skipping ${part.filename} (already in S3 with the same MD5)`);
        outcome.skipped.push(part.filename);
      } else {
        await bucket.put(key, data, md5, opts.acl);
        out.info(`Uploaded ${part.filename}`);
        outcome.uploaded.push(part.filename);
        outcome.bytesSent += data.length;
      }
      bytesDone += size;
      progress();
    },
    opts.signal,
  );
  out.endProgress();
  return outcome;
}

/** The manifest, last: its key, or undefined when --skipmanifest said not to. */
async function uploadManifest(
  bucket: S3Bucket,
  raw: Buffer,
  opts: UploadBundleOptions,
): Promise<string | undefined> {
  const { out, target } = opts;
  if (opts.skipManifest) {
    out.info('Skipping manifest.');
    return undefined;
  }
  out.info('Uploading manifest ...');
  const manifestKey = target.prefix + path.basename(opts.manifestPath);
  await bucket.put(manifestKey, raw, md5Base64(raw), opts.acl);
  out.info('Uploaded manifest.');
  out.info(`Manifest uploaded to: ${target.bucket}/${manifestKey}`);
  return manifestKey;
}

export async function uploadBundle(opts: UploadBundleOptions): Promise<UploadBundleResult> {
  const started = Date.now();
  const { out, target } = opts;
  const parsed = readManifestFile(opts.manifestPath);
  const dir = opts.partsDir ?? path.dirname(opts.manifestPath);
  // Every part must be there before the first byte is sent: no half-uploaded bundles.
  const parts = statParts(orderedParts(parsed), dir);

  const bucket = await openBucket(opts.connection, target.bucket, {
    create: true,
    acl: opts.acl,
    out,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  try {
    out.info(`Uploading bundled image parts to the S3 bucket ${target.bucket} ...`);
    const listPrefix = target.prefix + commonPrefix(parts.map((p) => p.part.filename));
    const stored = new Map((await bucket.listAll(listPrefix)).map((o) => [o.key, o]));
    const { uploaded, skipped, bytesSent } = await uploadParts(bucket, parts, stored, opts);
    const manifestKey = await uploadManifest(bucket, parsed.raw, opts);
    out.info('Bundle upload completed.');
    const seconds = (Date.now() - started) / 1000;
    out.event({
      type: 'done',
      command: 'upload-bundle',
      bucket: target.bucket,
      manifestKey,
      // What RegisterImage takes as ImageLocation.
      ...(manifestKey !== undefined ? { imageLocation: `${target.bucket}/${manifestKey}` } : {}),
      uploaded: uploaded.length,
      skipped: skipped.length,
      bytesSent,
      seconds,
    });
    return {
      ...(manifestKey !== undefined ? { manifestKey } : {}),
      uploaded,
      skipped,
      bytesSent,
      seconds,
      requests: bucket.requests,
    };
  } finally {
    bucket.close();
  }
}
