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
}
