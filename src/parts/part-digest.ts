// The one place that decides who checks a part's SHA-1 against the manifest, and the one place
// that hashes parts. A source that checks each part as it arrives (S3: a damaged download is
// fetched again before anyone sees it) reports the digest it checked through checkedDigest(); the
// restore's reader then uses the part without hashing the same bytes a second time. Any other
// part is hashed by the reader. Both go through partSha1*(), which count what they hashed (two
// additions per part) so tests can see that every part is hashed exactly once.
import { sha1Hex, sha1HexSync } from '../io/async-sha1.js';
import type { PartSource } from './part-source.js';

/** Parts and bytes hashed by partSha1() and partSha1Sync() in this process (read by tests). */
export const partsHashed = { parts: 0, bytes: 0 };

/** SHA-1 (hex) of one part, off the event loop when the addon is there. */
export function partSha1(data: Uint8Array): Promise<string> {
  partsHashed.parts++;
  partsHashed.bytes += data.length;
  return sha1Hex(data);
}

/** SHA-1 (hex) of one part, here and now: for checks that must answer synchronously. */
export function partSha1Sync(data: Uint8Array): string {
  partsHashed.parts++;
  partsHashed.bytes += data.length;
  return sha1HexSync(data);
}

/** Whether the reader must hash this part itself: the source did not check it against `digest`. */
export function readerChecksPart(source: PartSource, filename: string, digest: string): boolean {
  return source.checkedDigest?.(filename) !== digest;
}
