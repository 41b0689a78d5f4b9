// Parts read straight from S3 for restore and verify: nothing is written to disk. Each part's
// SHA-1 is checked as it arrives (a damaged one is fetched again), and checkedDigest() tells the
// reader so, which then does not hash it again (parts/part-digest.ts). The reader requests the
// next parts ahead, `readAhead` of them (parts/read-ahead.ts: --concurrency, at most
// MAX_S3_READ_AHEAD), so the network and the decoder overlap while memory stays bounded:
// read-ahead × part size, each body capped at min(64 MiB, the bundle's size) whether or not the
// server sends a length.
import type { PartSource } from '../parts/part-source.js';
import type { ParsedManifest } from '../format/manifest-reader.js';
import { DamagedDownload, type S3Bucket } from './bucket.js';
import { partSha1Sync } from '../parts/part-digest.js';
import { MAX_S3_READ_AHEAD } from '../parts/read-ahead.js';
import { MAX_PART_BYTES } from '../format/part-name.js';
import { s3Url } from './location.js';

export { MAX_S3_READ_AHEAD };

export class S3PartSource implements PartSource {
  readonly description: string;
  private readonly order: string[];
  private readonly position = new Map<string, number>();
  private readonly digests = new Map<string, string>();
  private readonly pending = new Map<string, Promise<Buffer>>();
  /** Parts fetched ahead: min(--concurrency, the number of parts, MAX_S3_READ_AHEAD). */
  readonly readAhead: number;
  /** No part can be larger than the whole bundle, nor than the part limit. */
  private readonly maxPartBytes: number;

  constructor(
    private readonly bucket: S3Bucket,
    private readonly prefix: string,
    /** The manifest the parts belong to (fetched from S3 by openS3PartSource). */
    readonly manifest: ParsedManifest,
    readonly manifestKey: string,
    concurrency: number,
  ) {
    this.description = s3Url(bucket.name, prefix);
    const parts = [...manifest.manifest.image.parts].sort((a, b) => a.index - b.index);
    this.order = parts.map((p) => p.filename);
    this.readAhead = Math.max(1, Math.min(concurrency, parts.length, MAX_S3_READ_AHEAD));
    this.maxPartBytes = Math.min(MAX_PART_BYTES, manifest.manifest.image.bundledSize);
    parts.forEach((p, i) => {
      this.position.set(p.filename, i);
      this.digests.set(p.filename, p.digest);
    });
  }

  /** Requests sent, by operation (for tests and benchmarks). */
  get requests(): ReadonlyMap<string, number> {
    return this.bucket.requests;
  }

  private fetch(filename: string): Promise<Buffer> {
    const existing = this.pending.get(filename);
    if (existing) return existing;
    const key = this.prefix + filename;
    const digest = this.digests.get(filename);
    const body = this.bucket.get(key, this.maxPartBytes, (data) => {
      if (digest === undefined) return;
      const got = partSha1Sync(data);
      if (got !== digest)
        throw new DamagedDownload(
          `part ${s3Url(this.bucket.name, key)} does not match the manifest: SHA-1 ${got}, the manifest says ${digest}`,
          'the object in S3 is damaged or was replaced: upload the bundle again',
        );
    });
    // A read-ahead nobody asks for must not become an unhandled rejection.
    body.catch(() => undefined);
    this.pending.set(filename, body);
    return body;
  }

  /** The digest each part was checked against as it arrived. */
  checkedDigest(filename: string): string | undefined {
    return this.digests.get(filename);
  }

  /** Starts fetching the first parts of a list (up to the read-ahead), in order. */
  prefetch(filenames: readonly string[]): void {
    for (const f of filenames.slice(0, this.readAhead)) void this.fetch(f);
  }

  /** The part (checked); the reader asks for the next ones ahead itself (parts/read-ahead.ts). */
  readPart(filename: string, _index: number): Promise<Buffer> {
    const body = this.fetch(filename);
    this.pending.delete(filename);
    return body;
  }

  /** Closes the connections; fetches still running fail quietly. */
  close(): void {
    this.pending.clear();
    this.bucket.close();
  }
}
