// bundleImage(): image -> extents -> tar (GNU sparse) -> compress -> AES-128-CBC -> 10 MiB parts,
// in one streaming pass with back-pressure, then the signed manifest. Nothing is staged on disk
// and no key material leaves this process.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { silentReporter, type Reporter } from '../events.js';
import { createAesEncryptor } from '../codec/aes-cbc.js';
import { createCompressor } from '../codec/compression.js';
import { wrapHex } from '../crypto/key-wrap.js';
import { checkKeyMatchesCertificate, loadCertificate, loadPrivateKey } from '../crypto/keys.js';
import { warnIfNoAddon } from '../io/native.js';
import { signHex } from '../crypto/signature.js';
import { BundleError } from '../errors.js';
import { amibundleBundler, type Manifest } from '../format/manifest.js';
import { serializeSigned, serializeUnsigned, signedBytes } from '../format/manifest-writer.js';
import { manifestName, partName } from '../format/part-name.js';
import type { MemberInfo } from '../format/tar-header.js';
import { EC2_ROOT_LIMIT_BYTES } from '../ec2-limits.js';
import { manifestVersion, toolVersion } from '../version.js';
import { planImage, type ImagePlan } from './image-plan.js';
import type { BundleImageOptions, BundleResult } from './bundle-options.js';
import { DirPartSink } from '../parts/dir-part-sink.js';
import type { PartSink, StoredPart } from '../parts/part-sink.js';
import { PartSplitter } from '../parts/part-splitter.js';
import { READ_SIZE, tarStream, type TarStreamResult } from './tar-stream.js';
import { BufferRing } from './buffer-ring.js';
import { compressThrough, READ_BUFFERS } from './feed.js';

/** A bundle name becomes a file name, a tar member name and an S3 key. */
export function checkBundleName(name: string): string {
  if (name === '') throw new BundleError('the bundle name (-p) is empty');
  if (name.includes('/'))
    throw new BundleError(`the bundle name '${name}' contains '/'`, "'/' character not allowed");
  if (name === '.' || name === '..' || name.startsWith('-'))
    throw new BundleError(`the bundle name '${name}' cannot be used as a file name`);
  if (/[\0-\x1f\x7f]/.test(name)) throw new BundleError('the bundle name contains control characters');
  if (Buffer.byteLength(name) > 200) throw new BundleError('the bundle name is longer than 200 bytes');
  return name;
}

/** The three keys a bundle needs, each named by its flag and file in any error. */
interface BundleKeys {
  readonly privateKey: crypto.KeyObject;
  readonly userCert: crypto.X509Certificate;
  readonly ec2Cert: crypto.X509Certificate;
}

/** The AES key and IV of one bundle, as the manifest wraps them (hex). */
interface BundleSecret {
  readonly keyHex: string;
  readonly ivHex: string;
}

/** Keys first: a mismatched certificate must fail before an hour of compression. */
function loadBundleKeys(opts: BundleImageOptions): BundleKeys {
  const from = (flag: string, file: string | undefined): string => (file ? `${flag} ${file}` : flag);
  const keyWhat = `private key (${from('-k', opts.pemFiles?.privateKey)})`;
  const certWhat = `certificate (${from('-c', opts.pemFiles?.userCert)})`;
  const privateKey = loadPrivateKey(opts.privateKeyPem, keyWhat);
  const userCert = loadCertificate(opts.userCertPem, certWhat);
  checkKeyMatchesCertificate(privateKey, userCert, keyWhat, certWhat);
  const ec2Cert = loadCertificate(
    opts.ec2CertPem,
    `EC2 certificate (${from('--ec2cert', opts.pemFiles?.ec2Cert)})`,
  );
  return { privateKey, userCert, ec2Cert };
}

/** Refuses an empty image, warns about a large one or a missing addon, and says what starts. */
function announce(out: Reporter, opts: BundleImageOptions, name: string, plan: ImagePlan): void {
  if (plan.size === 0) throw new BundleError(`the specified image ${opts.imagePath} is zero sized`);
  warnIfNoAddon(out, plan.size);
  if (plan.size > EC2_ROOT_LIMIT_BYTES)
    out.warn(
      `the image is ${plan.size} bytes, over EC2's instance-store root limit of ${EC2_ROOT_LIMIT_BYTES} bytes (10 GiB): EC2 will refuse to register it`,
    );
  out.event({
    type: 'start',
    command: 'bundle-image',
    image: opts.imagePath,
    name,
    size: plan.size,
    dataBytes: plan.dataBytes,
  });
  out.info(
    `Bundling image file ${opts.imagePath} (${plan.size} bytes, ${plan.dataBytes} bytes of data${plan.sparseMap ? ` in ${plan.sparseMap.length} extents` : ''})...`,
  );
}

/**
 * The one streaming pass: image extents -> tar -> compress -> AES-128-CBC -> parts in `sink`.
 * Returns the parts with their final names and the tar stream's SHA-1 (the manifest's digest).
 */
async function streamParts(
  image: fs.promises.FileHandle,
  name: string,
  plan: ImagePlan,
  secret: BundleSecret,
  sink: PartSink,
  opts: BundleImageOptions,
  out: Reporter,
): Promise<{ parts: StoredPart[]; tar: TarStreamResult }> {
  const member: MemberInfo = {
    name,
    mode: plan.mode,
    mtime: plan.mtime,
    size: plan.size,
    ...(plan.sparseMap ? { sparseMap: plan.sparseMap } : {}),
  };
  const tar: TarStreamResult = { digest: '', length: 0 };
  let done = 0;
  const splitter = new PartSplitter(sink, (index, d) =>
    out.event({ type: 'part', index, size: d.size, sha1: d.sha1 }),
  );
  const compressor = createCompressor(opts.compression);
  const cipher = createAesEncryptor(Buffer.from(secret.keyHex, 'hex'), Buffer.from(secret.ivHex, 'hex'));
  // Read buffers are reused: each goes back to the ring once the compressor has copied it.
  const ring = new BufferRing(READ_BUFFERS, READ_SIZE);
  const chunks = tarStream(
    image,
    member,
    plan.extents,
    tar,
    (n) => {
      done += n;
      out.progress({ phase: 'bundle', done, total: plan.dataBytes, unit: 'bytes' });
    },
    () => ring.acquire(),
  );
  await compressThrough(chunks, compressor, [cipher, splitter], {
    ring,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  out.endProgress();

  const count = splitter.parts.length;
  const parts = splitter.parts.map((d, index) => ({ ...d, index, filename: partName(name, index, count) }));
  return { parts, tar };
}

/** The manifest of the bundle just streamed, its key and IV wrapped for the user and for EC2. */
function bundleManifest(
  opts: BundleImageOptions,
  name: string,
  plan: ImagePlan,
  stream: { parts: readonly StoredPart[]; tar: TarStreamResult },
  keys: BundleKeys,
  secret: BundleSecret,
): Manifest {
  const { parts, tar } = stream;
  return {
    version: manifestVersion,
    bundler: amibundleBundler(toolVersion),
    machineConfiguration: {
      architecture: opts.architecture,
      ...(opts.blockDeviceMapping?.length ? { blockDeviceMapping: opts.blockDeviceMapping } : {}),
      kernelId: opts.kernelId,
      ramdiskId: opts.ramdiskId,
      ...(opts.productCodes?.length ? { productCodes: opts.productCodes } : {}),
    },
    image: {
      name,
      user: opts.user,
      type: 'machine',
      ...(opts.ancestry?.length ? { ancestry: opts.ancestry } : {}),
      digest: tar.digest,
      digestAlgorithm: 'SHA1',
      size: plan.size,
      bundledSize: parts.reduce((s, p) => s + p.size, 0),
      ec2EncryptedKey: wrapHex(keys.ec2Cert.publicKey, secret.keyHex),
      userEncryptedKey: wrapHex(keys.userCert.publicKey, secret.keyHex),
      ec2EncryptedIv: wrapHex(keys.ec2Cert.publicKey, secret.ivHex),
      userEncryptedIv: wrapHex(keys.userCert.publicKey, secret.ivHex),
      keyAlgorithm: 'AES-128-CBC',
      ...(opts.compression.codec !== 'gzip' ? { compression: opts.compression.codec } : {}),
      parts: parts.map((p) => ({ index: p.index, filename: p.filename, digest: p.sha1 })),
    },
  };
}

export async function bundleImage(opts: BundleImageOptions): Promise<BundleResult> {
  const started = process.hrtime.bigint();
  const out = opts.out ?? silentReporter;
  const name = checkBundleName(opts.name ?? path.basename(opts.imagePath));
  const keys = loadBundleKeys(opts);

  const image = await fs.promises.open(opts.imagePath, 'r');
  let sink = opts.sink;
  try {
    const plan = await planImage(image, opts.imagePath, opts.sparse);
    announce(out, opts, name, plan);
    const secret: BundleSecret = {
      keyHex: crypto.randomBytes(16).toString('hex'),
      ivHex: crypto.randomBytes(16).toString('hex'),
    };
    sink ??= new DirPartSink(opts.destination ?? '.', name, out);
    const stream = await streamParts(image, name, plan, secret, sink, opts, out);
    const manifest = bundleManifest(opts, name, plan, stream, keys, secret);
    const unsigned = serializeUnsigned(manifest);
    const manifestBytes = serializeSigned(unsigned, signHex(keys.privateKey, signedBytes(unsigned)));
    const manifestLocation = await sink.commit(stream.parts, manifestName(name), manifestBytes);
    return {
      name,
      manifestLocation,
      parts: stream.parts.map((p) => ({ filename: p.filename, sha1: p.sha1, size: p.size })),
      digest: stream.tar.digest,
      size: plan.size,
      bundledSize: manifest.image.bundledSize,
      dataBytes: plan.dataBytes,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
  } catch (err) {
    out.endProgress();
    await sink?.abort();
    if (opts.signal?.aborted) throw opts.signal.reason;
    throw err;
  } finally {
    await image.close();
  }
}
