// The bundle manifest as data: what version 2007-10-10 holds (FORMAT.md §5), plus what older
// versions lack. Readers fill what they find; the writer emits exactly the reference's bytes.
//
// format/ is the manifest's one home: these types, where its parts lie in its bytes
// (manifest-layout.ts), the reader and the writer, the version classes ec2-migrate-manifest tells
// apart (manifest-version.ts), the form REXML re-serialises it to (rexml-form.ts) and reading one
// from a file (manifest-file.ts). All of it is what a manifest is, so it sits below every feature
// that uses one; migrate/ keeps only the migration itself.

export interface Bundler {
  readonly name: string;
  readonly version: string;
  readonly release: string;
}

export interface DeviceMapping {
  readonly virtual: string;
  readonly device: string;
}

export interface MachineConfiguration {
  readonly architecture?: string;
  /** Sorted by virtual name (bytewise) when written. */
  readonly blockDeviceMapping?: readonly DeviceMapping[];
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  readonly productCodes?: readonly string[];
}

export interface ManifestPart {
  readonly index: number;
  readonly filename: string;
  /** Lowercase hex SHA-1 of the part file. */
  readonly digest: string;
}

/** How the tar stream was compressed. gzip is what EC2 understands; zstd is amibundle's own. */
export type Compression = 'gzip' | 'zstd';

export interface ManifestImage {
  readonly name: string;
  readonly user: string;
  readonly type: string;
  readonly kernelName?: string;
  readonly ancestry?: readonly string[];
  /** SHA-1 (hex) of the uncompressed tar stream. */
  readonly digest: string;
  readonly digestAlgorithm: string;
  /** Apparent size of the image in bytes. */
  readonly size: number;
  /** Size of the encrypted stream = sum of part sizes. */
  readonly bundledSize: number;
  readonly ec2EncryptedKey: string;
  readonly userEncryptedKey: string;
  readonly ec2EncryptedIv: string;
  readonly userEncryptedIv: string;
  /** `algorithm` attribute of the two encrypted-key elements. */
  readonly keyAlgorithm: string;
  /**
   * amibundle extension, written as `<compression>zstd</compression>` only when not gzip;
   * ec2-ami-tools ignores unknown elements. Absent means gzip.
   */
  readonly compression?: Compression;
  readonly parts: readonly ManifestPart[];
}

export interface Manifest {
  readonly version: string;
  readonly bundler?: Bundler;
  readonly machineConfiguration?: MachineConfiguration;
  readonly image: ManifestImage;
  /** Hex RSA-SHA1 signature; absent while building. */
  readonly signature?: string;
}

/** The bundler identity amibundle writes (readers only require the three fields to exist). */
export function amibundleBundler(version: string): Bundler {
  return { name: 'amibundle', version, release: '0' };
}
