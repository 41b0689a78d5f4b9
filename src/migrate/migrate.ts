// Migrating a manifest to another region or partition (ec2-migrate-manifest, S3.md §10): check
// its signature, choose the kernel/ramdisk ids, re-wrap the bundle key and IV for the target
// EC2 certificate, rebuild it as version 2007-10-10 and sign it again. Pure: files are the
// caller's business, so the caller can refuse, confirm and back up before anything changes.
import type crypto from 'node:crypto';
import { aesMaterial, createUnwrapper, wrapHex } from '../crypto/key-wrap.js';
import { checkKeyMatchesCertificate, loadCertificate, loadPrivateKey } from '../crypto/keys.js';
import { signHex, verifyHex } from '../crypto/signature.js';
import { AmiError, BundleError, UsageError } from '../errors.js';
import type { Manifest, MachineConfiguration } from '../format/manifest.js';
import { parseManifest, type ParsedManifest } from '../format/manifest-reader.js';
import { serializeSigned, serializeUnsigned, signedBytes } from '../format/manifest-writer.js';
import { manifestVersion } from '../version.js';
import { signedLayout } from '../format/manifest-layout.js';
import { checkMigratable, type ManifestVersionClass } from '../format/manifest-version.js';
import { rexmlForm } from '../format/rexml-form.js';

export interface SourceManifest {
  readonly parsed: ParsedManifest;
  readonly versionClass: ManifestVersionClass;
}

/** Reads a manifest for migration. Errors are BundleErrors with the reference's wording. */
export function readSourceManifest(raw: Buffer): SourceManifest {
  const parsed = parseManifest(raw);
  return { parsed, versionClass: checkMigratable(raw.toString('utf8')) };
}

/**
 * Which bytes the signature verified over: the file's own substrings, or (fallback) those of its
 * REXML re-serialisation, which is what ec2-migrate-manifest checks. Undefined: it fails both.
 */
export function authenticate(
  source: SourceManifest,
  cert: crypto.X509Certificate,
): 'raw' | 'rexml' | undefined {
  const signature = source.parsed.manifest.signature;
  if (!signature) return undefined;
  if (verifyHex(cert.publicKey, source.parsed.signedData, signature)) return 'raw';
  // The same nodes in the re-serialised form (it only rewrites tags, so the layout is the same).
  const rexml = Buffer.from(rexmlForm(source.parsed.raw.toString('utf8')), 'utf8');
  let rexmlSigned: Buffer;
  try {
    rexmlSigned = signedLayout(rexml).signedData;
  } catch {
    return undefined;
  }
  if (verifyHex(cert.publicKey, rexmlSigned, signature)) return 'rexml';
  return undefined;
}

/** What the user asked for one id: a replacement (`''` = remove), or nothing. */
export interface IdRequest {
  readonly kernel?: string;
  readonly ramdisk?: string;
  /** false with `--no-mapping`: ids not given are dropped, as the reference does. */
  readonly mapping: boolean;
}

export interface IdChoice {
  readonly kernelId?: string;
  readonly ramdiskId?: string;
  /** Ids the source had that the result will not (the reference asks before dropping them). */
  readonly removed: readonly string[];
}

export const MAPPING_UNSUPPORTED =
  'automatic kernel/ramdisk mapping is not supported (ec2-ami-tools did it through EC2 API calls AWS has retired)';

/**
 * The kernel and ramdisk ids of the migrated manifest. Explicit values win; an id the source has
 * and the user did not give would need the automatic mapping, which is refused with what to pass.
 */
export function chooseIds(source: MachineConfiguration | undefined, req: IdRequest): IdChoice {
  const had = { kernel: source?.kernelId, ramdisk: source?.ramdiskId };
  if (req.mapping) {
    const unmapped = (['kernel', 'ramdisk'] as const).filter((k) => had[k] && req[k] === undefined);
    if (unmapped.length > 0) {
      const ids = unmapped.map((k) => `${k} ${had[k]}`).join(' and ');
      const flags = unmapped.map((k) => `--${k} ID`).join(' ');
      throw new UsageError(
        `${MAPPING_UNSUPPORTED}; this manifest has ${ids}`,
        `pass ${flags} with the target region's ids (repeat the current ones to keep them), or --no-mapping to remove what you do not pass`,
      );
    }
  }
  const pick = (given: string | undefined): string | undefined =>
    given === undefined || given.trim() === '' ? undefined : given.trim();
  const kernelId = pick(req.kernel);
  const ramdiskId = pick(req.ramdisk);
  const removed = [
    had.kernel && !kernelId ? had.kernel : undefined,
    had.ramdisk && !ramdiskId ? had.ramdisk : undefined,
  ];
  return {
    ...(kernelId ? { kernelId } : {}),
    ...(ramdiskId ? { ramdiskId } : {}),
    removed: removed.filter((r): r is string => r !== undefined),
  };
}

export interface RebuildOptions {
  readonly privateKey: crypto.KeyObject;
  /** The certificate the source signature verified with; the re-signed manifest must too. */
  readonly userCert: crypto.X509Certificate;
  /** The target EC2 certificate the key and IV are wrapped to. */
  readonly ec2Cert: crypto.X509Certificate;
  readonly ids: IdChoice;
}

export interface MigratedManifest {
  readonly manifest: Manifest;
  /** The complete new manifest file. */
  readonly bytes: Buffer;
}

/** The source manifest as version 2007-10-10, key and IV wrapped to the new EC2 cert, signed. */
export function rebuildManifest(source: SourceManifest, opts: RebuildOptions): MigratedManifest {
  const m = source.parsed.manifest;
  checkKeyMatchesCertificate(opts.privateKey, opts.userCert);
  const unwrapper = createUnwrapper(opts.privateKey);
  const unwrap = (hex: string, what: string): string => {
    try {
      return aesMaterial(unwrapper.unwrap(hex, what), what).toString('hex');
    } catch (err) {
      if (!(err instanceof AmiError)) throw err;
      throw new BundleError(
        err.message,
        'migration needs the private key the bundle was made for (-k), to re-wrap the key for EC2',
      );
    }
  };
  const keyHex = unwrap(m.image.userEncryptedKey, 'user_encrypted_key');
  const ivHex = unwrap(m.image.userEncryptedIv, 'user_encrypted_iv');

  const old = m.machineConfiguration;
  const isOld = source.versionClass !== manifestVersion;
  const type = isOld ? 'machine' : m.image.type;
  const machineConfiguration: MachineConfiguration = {
    architecture: source.versionClass === '3' ? 'i386' : old?.architecture,
    ...(old?.blockDeviceMapping ? { blockDeviceMapping: old.blockDeviceMapping } : {}),
    ...(opts.ids.kernelId ? { kernelId: opts.ids.kernelId } : {}),
    ...(opts.ids.ramdiskId ? { ramdiskId: opts.ids.ramdiskId } : {}),
    ...(old?.productCodes ? { productCodes: old.productCodes } : {}),
  };
  const { kernelName, ...image } = m.image;
  const manifest: Manifest = {
    version: manifestVersion,
    ...(m.bundler ? { bundler: m.bundler } : {}),
    machineConfiguration,
    image: {
      ...image,
      type,
      ...(type === 'kernel' && kernelName ? { kernelName } : {}),
      ec2EncryptedKey: wrapHex(opts.ec2Cert.publicKey, keyHex),
      ec2EncryptedIv: wrapHex(opts.ec2Cert.publicKey, ivHex),
    },
  };
  const unsigned = serializeUnsigned(manifest);
  const signature = signHex(opts.privateKey, signedBytes(unsigned));
  const bytes = serializeSigned(unsigned, signature);
  // The result must be exactly what any reader, ours included, accepts and verifies.
  const reread = parseManifest(bytes);
  if (!verifyHex(opts.userCert.publicKey, reread.signedData, signature))
    throw new Error('the migrated manifest does not verify with the certificate');
  return { manifest: { ...manifest, signature }, bytes };
}

/** Loads the PEM inputs of a migration with messages naming the flag at fault. */
export function loadMigrationKeys(pems: { privateKey: string; userCert: string; ec2Cert: string }): {
  privateKey: crypto.KeyObject;
  userCert: crypto.X509Certificate;
  ec2Cert: crypto.X509Certificate;
} {
  return {
    privateKey: loadPrivateKey(pems.privateKey, 'private key (-k)'),
    userCert: loadCertificate(pems.userCert, 'certificate (-c)'),
    ec2Cert: loadCertificate(pems.ec2Cert, 'EC2 certificate'),
  };
}
