// Where the parts of a bundle are read from when restoring or verifying: a local directory or S3.

export interface PartSource {
  /** Human description for messages. */
  readonly description: string;
  /**
   * The whole part as one buffer (parts are at most MAX_PART_BYTES, 64 MiB): its SHA-1 is checked before any
   * byte of it is used. Rejects with a clear error when the part is missing. A source may read into
   * `into` (at least 10 MiB, reused by the caller) and return a view of it, or ignore it.
   */
  readPart(filename: string, index: number, into?: Buffer): Promise<Buffer>;
  /**
   * For a source that checks each part's SHA-1 itself before returning it: the digest it checked
   * `filename` against. The reader then does not hash the part again (part-digest.ts decides).
   */
  checkedDigest?(filename: string): string | undefined;
  /** Parts to request ahead of the one being decoded (read-ahead.ts: the one setting). */
  readonly readAhead?: number;
}
