// Where the parts of a bundle go as they are produced: a local directory or S3. Part names are
// only known once the count is (their width depends on it), so sinks store parts under
// provisional names and give them their final names in commit().
//
// parts/ is the layer between the features (bundle/ writes parts, restore/ reads them, s3/ holds
// the S3 implementations) and the bundle format: these contracts, the directory implementations
// and the splitter. The part names themselves stay in format/part-name.ts: they are a fact of the
// ec2-ami-tools bundle layout (NAME.part.NN, 10 MiB parts) that the manifest reader checks too,
// not a property of where parts are kept.

export interface PartDigests {
  /** Lowercase hex SHA-1, as the manifest records it. */
  readonly sha1: string;
  /** Base64 MD5, for S3's Content-MD5 and resume checks. */
  readonly md5: string;
  readonly size: number;
}

export interface StoredPart extends PartDigests {
  readonly index: number;
  /** Final file name, e.g. `image.part.07`. */
  readonly filename: string;
}

export interface PartWriter {
  /** Appends bytes to the part; resolves when the sink can take more (back-pressure). */
  write(chunk: Buffer): Promise<void>;
  /**
   * Ends the part. May resolve before the part is durable (an S3 sink uploads in the
   * background, bounded); commit() waits for every part.
   */
  close(digests: PartDigests): Promise<void>;
}

export interface PartSink {
  /** Human description for messages, e.g. the directory or `s3://bucket/prefix`. */
  readonly description: string;
  openPart(index: number): Promise<PartWriter>;
  /**
   * Every part is written: give the parts their final names, then store the manifest last.
   * Returns where the manifest is (a path or an S3 location).
   */
  commit(parts: readonly StoredPart[], manifestFileName: string, manifest: Buffer): Promise<string>;
  /** Remove everything this run stored. Safe to call more than once, and after a failed commit. */
  abort(): Promise<void>;
}
