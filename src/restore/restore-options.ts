// What restoreBundle() and verifyBundle() need: a parsed manifest, where its parts are, and the
// key that unwraps the AES key and IV.
import type { Reporter } from '../cli/reporter.js';
import type { DiskFormat } from '../disk/image-sink.js';
import type { ParsedManifest } from '../format/manifest-reader.js';
import type { PartSource } from './part-source.js';

export interface RestoreOptions {
  readonly manifest: ParsedManifest;
  readonly source: PartSource;
  /** PEM text of the RSA private key: the user's, or EC2's with `useEc2Key`. */
  readonly privateKeyPem: string;
  /** Unwrap `<ec2_encrypted_key>`/`<ec2_encrypted_iv>` instead of the user copies. */
  readonly useEc2Key?: boolean;
  /** PEM text of a certificate: when given, the manifest signature must verify against it. */
  readonly certPem?: string;
  /** Directory the image is written into (as `<name>`); absent = verify only. */
  readonly destination?: string;
  /** Disk format the image is written in (default raw: the sparse image itself). */
  readonly format?: DiskFormat;
  readonly signal?: AbortSignal;
  readonly out?: Reporter;
}

export interface RestoreResult {
  /** Path of the restored image (absent when only verifying). */
  readonly imagePath?: string;
  readonly memberName: string;
  readonly size: number;
  readonly digest: string;
  readonly partsChecked: number;
  readonly signatureVerified: boolean;
  readonly seconds: number;
}
