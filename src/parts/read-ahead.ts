// The one read-ahead setting: how many parts the restore requests ahead of the one it is decoding.
// A local directory needs little (a part reads in milliseconds); S3 needs more to hide each
// request's latency, up to --concurrency, never past MAX_S3_READ_AHEAD (memory: parts × 10 MiB).
import type { PartSource } from './part-source.js';

/** Parts read ahead from a source that does not say (a directory): keeps the decryptor busy. */
export const DEFAULT_PART_READ_AHEAD = 2;
/** The most any source may ask for, whatever --concurrency says: 8 × 10 MiB parts = 80 MiB. */
export const MAX_S3_READ_AHEAD = 8;

/** Parts to request ahead of the one being decoded from `source` (at least 1). */
export function partReadAhead(source: PartSource): number {
  return Math.max(1, Math.min(source.readAhead ?? DEFAULT_PART_READ_AHEAD, MAX_S3_READ_AHEAD));
}
