// What bundleImage() needs: the image, the keys, the manifest's machine facts, and how to
// compress and where to put the parts.
import type { Reporter } from '../events.js';
import type { DeviceMapping } from '../format/manifest.js';
import type { PartSink } from '../parts/part-sink.js';

/** How holes in the image are found (see README): fs = SEEK_DATA/SEEK_HOLE like GNU tar. */
export type SparseMode = 'fs' | 'zeros' | 'none';

export type CompressionOptions =
  | { readonly codec: 'gzip'; readonly level: number; readonly threads: number }
  | { readonly codec: 'zstd'; readonly level: number; readonly threads: number };

export interface BundleImageOptions {
  /** The disk image to bundle (regular file, not empty). */
  readonly imagePath: string;
  /** Bundle name (`-p`); default: the image's basename. Also the tar member name. */
  readonly name?: string;
  /** Directory for parts and manifest, used when no sink is given. */
  readonly destination?: string;
  /** Where parts go; default: a directory sink at `destination`. */
  readonly sink?: PartSink;
  /** PEM text of the user's RSA private key (signs the manifest). */
  readonly privateKeyPem: string;
  /** PEM text of the user's X.509 certificate (wraps key/IV for the user). */
  readonly userCertPem: string;
  /** PEM text of the EC2 certificate (wraps key/IV for EC2). */
  readonly ec2CertPem: string;
  /** The files the three PEM texts were read from, named in error lines. */
  readonly pemFiles?: { readonly privateKey: string; readonly userCert: string; readonly ec2Cert: string };
  /** AWS account number, hyphens removed. */
  readonly user: string;
  readonly architecture: string;
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  readonly productCodes?: readonly string[];
  readonly blockDeviceMapping?: readonly DeviceMapping[];
  readonly ancestry?: readonly string[];
  readonly sparse: SparseMode;
  readonly compression: CompressionOptions;
  readonly signal?: AbortSignal;
  readonly out?: Reporter;
}

export interface BundleResult {
  readonly name: string;
  /** Where the manifest was stored (a path, or an S3 location). */
  readonly manifestLocation: string;
  readonly parts: readonly { readonly filename: string; readonly sha1: string; readonly size: number }[];
  /** SHA-1 of the tar stream (the manifest `<digest>`). */
  readonly digest: string;
  readonly size: number;
  readonly bundledSize: number;
  readonly dataBytes: number;
  readonly seconds: number;
}
