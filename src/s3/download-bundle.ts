// download-bundle: the manifest, then every part in parallel, each SHA-1-checked as it lands
// (a damaged one is fetched again), written under a temporary name and renamed, so a file with a
// part's name is always a whole, verified part. Parts already on disk and intact are kept.
import fs from 'node:fs';
import path from 'node:path';
import type { Reporter } from '../events.js';
import { MAX_MANIFEST_BYTES } from '../format/manifest-reader.js';
import { DamagedDownload } from './bucket.js';
import { sha1HexSync } from '../io/async-sha1.js';
import { parseNamed } from '../format/manifest-file.js';
import { readRegular } from '../io/safe-open.js';
import { sweepStaleTemps } from '../io/owned-temp.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import { MAX_PART_BYTES } from '../format/part-name.js';
import { orderedParts } from './bundle-parts.js';
import type { S3ConnectionConfig } from './connection.js';
import { s3Url, type S3Location } from './location.js';
import { openBucket } from './open-bucket.js';
import { forEachLimited } from './task-pool.js';

export interface DownloadBundleOptions {
  readonly source: S3Location;
  /** The manifest's object name under the prefix, e.g. `image.manifest.xml`. */
  readonly manifestName: string;
  readonly directory: string;
  readonly connection: S3ConnectionConfig;
  readonly out: Reporter;
  readonly signal?: AbortSignal;
}

export interface DownloadBundleResult {
  readonly manifestPath: string;
  readonly downloaded: readonly string[];
  /** Parts already on disk with the right SHA-1. */
  readonly kept: readonly string[];
  readonly bytesReceived: number;
  readonly seconds: number;
}

/** Downloaded parts and the manifest get the mode bundling gives them; a damaged one is replaced. */
const PUT_DOWNLOADED = { mode: 0o644, underUmask: true, overwrite: true } as const;

async function intactOnDisk(file: string, sha1: string): Promise<boolean> {
  try {
    // A link or FIFO under a part's name is never followed: it is replaced by the download.
    return sha1HexSync(await readRegular(file, 'part file', MAX_PART_BYTES)) === sha1;
  } catch {
    return false;
  }
}

export async function downloadBundle(opts: DownloadBundleOptions): Promise<DownloadBundleResult> {
  const started = Date.now();
  const { out, source } = opts;
  const bucket = await openBucket(opts.connection, source.bucket, {
    out,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  try {
    const manifestKey = source.prefix + opts.manifestName;
    const manifestPath = path.join(opts.directory, opts.manifestName);
    out.info(`Downloading manifest ${manifestKey} from ${source.bucket} to ${manifestPath} ...`);
    const raw = await bucket.get(manifestKey, MAX_MANIFEST_BYTES);
    const parsed = parseNamed(raw, s3Url(source.bucket, manifestKey));
    const parts = orderedParts(parsed);
    const total = parsed.manifest.image.bundledSize;
    sweepStaleTemps(opts.directory, parsed.manifest.image.name, out);

    const downloaded: string[] = [];
    const kept: string[] = [];
    let bytesReceived = 0;
    let bytesDone = 0;
    await forEachLimited(
      parts,
      opts.connection.concurrency,
      async (part) => {
        const file = path.join(opts.directory, part.filename);
        if (await intactOnDisk(file, part.digest)) {
          out.info(`Skipping ${part.filename} (already downloaded, SHA-1 matches)`);
          kept.push(part.filename);
        } else {
          const key = source.prefix + part.filename;
          const data = await bucket.get(key, Math.min(MAX_PART_BYTES, total), (body) => {
            const got = sha1HexSync(body);
            if (got !== part.digest)
              throw new DamagedDownload(
                `part ${s3Url(source.bucket, key)} does not match the manifest: SHA-1 ${got}, the manifest says ${part.digest}`,
                'the object in S3 is damaged or was replaced: upload the bundle again',
              );
          });
          await writeFileAtomic(file, data, PUT_DOWNLOADED);
          out.info(`Downloaded ${part.filename} from ${source.bucket}`);
          downloaded.push(part.filename);
          bytesReceived += data.length;
        }
        bytesDone += (await fs.promises.stat(file)).size;
        out.progress({
          phase: `download (${downloaded.length + kept.length}/${parts.length} parts)`,
          done: bytesDone,
          total,
          unit: 'bytes',
        });
      },
      opts.signal,
    );
    out.endProgress();
    // The manifest comes last: its presence on disk means every part beside it is verified.
    await writeFileAtomic(manifestPath, raw, PUT_DOWNLOADED);
    const seconds = (Date.now() - started) / 1000;
    out.info(
      `Download complete: ${parts.length} parts in ${opts.directory}${kept.length > 0 ? ` (${kept.length} already there)` : ''}.`,
    );
    out.event({
      type: 'done',
      command: 'download-bundle',
      manifestPath,
      downloaded: downloaded.length,
      kept: kept.length,
      bytesReceived,
      seconds,
    });
    return { manifestPath, downloaded, kept, bytesReceived, seconds };
  } finally {
    bucket.close();
  }
}
