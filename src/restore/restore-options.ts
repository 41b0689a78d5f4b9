// What restoreBundle() needs: a parsed manifest, where its parts are, and the key that unwraps the
// AES key and IV. verifyParts() (restore.ts) takes the part of it that needs no key.
import type { Reporter, StageBusy } from '../events.js';
import type { DiskFormat, ImageSink } from '../disk/image-sink.js';
import type { TarMember } from '../format/tar-reader.js';
import type { ParsedManifest } from '../format/manifest-reader.js';
import type { PartSource } from '../parts/part-source.js';

export interface RestoreOptions {
  readonly manifest: ParsedManifest;
  readonly source: PartSource;
  /** PEM text of the RSA private key: the user's, or EC2's with `useEc2Key`. */
  readonly privateKeyPem: string;
  /** Unwrap `<ec2_encrypted_key>`/`<ec2_encrypted_iv>` instead of the user copies. */
  readonly useEc2Key?: boolean;
  /**
   * PEM text of a certificate: when given, the manifest signature must verify against it. When
   * absent it must verify with the public half of `privateKeyPem` (the bundler signs with the key
   * pair whose certificate wraps user_encrypted_key), except with `useEc2Key`: that key is EC2's,
   * not the signer's, so nothing can be checked without a certificate.
   */
  readonly certPem?: string;
  /** `--no-signature-check`: the signature is not checked at all (and the result says so). */
  readonly skipSignature?: boolean;
  /** Directory the image is written into (as `<name>`); absent = verify only. */
  readonly destination?: string;
  /** Disk format the image is written in (default raw: the sparse image itself). */
  readonly format?: DiskFormat;
  /** Where the image goes instead of `destination` and `format` (`--device`: a block device; to-ebs: an EBS snapshot). */
  readonly imageSink?: (member: TarMember, name: string) => ImageSink;
  readonly signal?: AbortSignal;
  readonly out?: Reporter;
}

/** What the signature check did: verified with which key, or why it was not checked. */
export type SignatureOutcome =
  | { readonly verified: true; readonly with: 'private-key' | 'cert' }
  | { readonly verified: false; readonly reason: 'ec2-key' | 'disabled' | 'no-key' };

export interface RestoreResult {
  /** Path of the restored image (absent when only verifying). */
  readonly imagePath?: string;
  readonly memberName: string;
  readonly size: number;
  readonly digest: string;
  readonly partsChecked: number;
  readonly signatureVerified: boolean;
  readonly signature: SignatureOutcome;
  readonly seconds: number;
  /** Busy seconds per stage (io/busy-clock.ts): where the wall time went. */
  readonly stages: readonly StageBusy[];
}
