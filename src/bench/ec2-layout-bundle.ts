// A bundle laid out as ec2-ami-tools writes one, for the benchmark: the encrypted stream comes
// from the real `tar -cS | gzip -9 | openssl enc -aes-128-cbc` pipeline (one gzip member, no
// block marks), cut here into 10 MiB parts with a signed manifest around them, so `unbundle` can
// be timed on exactly the bundles people are rescuing. Throw-away keys only (bench-keys.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AmiError } from '../errors.js';
import { wrapHex } from '../crypto/key-wrap.js';
import { loadCertificate, loadPrivateKey } from '../crypto/keys.js';
import { signHex } from '../crypto/signature.js';
import type { Manifest } from '../format/manifest.js';
import { serializeSigned, serializeUnsigned, signedBytes } from '../format/manifest-writer.js';
import { PART_SIZE, partCount, partName } from '../format/part-name.js';

export interface Ec2LayoutInput {
  /** The output of `tar -cS … | gzip -9 | openssl enc -aes-128-cbc -K keyHex -iv ivHex`. */
  readonly encryptedFile: string;
  readonly keyHex: string;
  readonly ivHex: string;
  /** SHA-1 (hex) of the tar stream, and the member's name and size in it. */
  readonly tarDigest: string;
  readonly imageName: string;
  readonly imageSize: number;
  readonly keyFile: string;
  readonly certFile: string;
  /** The certificate the EC2 copies of key and IV are wrapped for (default: certFile). */
  readonly ec2CertFile?: string;
  /** Where the parts and `<imageName>.manifest.xml` go. */
  readonly dir: string;
}

/** Writes the parts and the signed manifest; returns the manifest's path. */
export async function writeEc2LayoutBundle(input: Ec2LayoutInput): Promise<string> {
  const bundledSize = (await fs.promises.stat(input.encryptedFile)).size;
  const count = partCount(bundledSize);
  const parts: { index: number; filename: string; digest: string }[] = [];
  const handle = await fs.promises.open(input.encryptedFile, 'r');
  try {
    const buf = Buffer.allocUnsafe(PART_SIZE);
    for (let index = 0; index < count; index++) {
      const { bytesRead } = await handle.read(buf, 0, PART_SIZE, index * PART_SIZE);
      const data = buf.subarray(0, bytesRead);
      const filename = partName(input.imageName, index, count);
      await fs.promises.writeFile(path.join(input.dir, filename), data);
      parts.push({ index, filename, digest: crypto.createHash('sha1').update(data).digest('hex') });
    }
  } finally {
    await handle.close();
  }
  const cert = loadCertificate(await fs.promises.readFile(input.certFile, 'utf8'));
  const ec2Cert = input.ec2CertFile
    ? loadCertificate(await fs.promises.readFile(input.ec2CertFile, 'utf8'))
    : cert;
  const model: Manifest = {
    version: '2007-10-10',
    bundler: { name: 'ec2-ami-tools layout (amibundle bench)', version: '1.5', release: '3' },
    machineConfiguration: { architecture: 'x86_64' },
    image: {
      name: input.imageName,
      user: '123456789012',
      type: 'machine',
      digest: input.tarDigest,
      digestAlgorithm: 'SHA1',
      size: input.imageSize,
      bundledSize,
      ec2EncryptedKey: wrapHex(ec2Cert.publicKey, input.keyHex),
      userEncryptedKey: wrapHex(cert.publicKey, input.keyHex),
      ec2EncryptedIv: wrapHex(ec2Cert.publicKey, input.ivHex),
      userEncryptedIv: wrapHex(cert.publicKey, input.ivHex),
      keyAlgorithm: 'AES-128-CBC',
      parts,
    },
  };
  const signer = loadPrivateKey(await fs.promises.readFile(input.keyFile, 'utf8'));
  const unsigned = serializeUnsigned(model);
  const manifestPath = path.join(input.dir, `${input.imageName}.manifest.xml`);
  await fs.promises.writeFile(
    manifestPath,
    serializeSigned(unsigned, signHex(signer, signedBytes(unsigned))),
  );
  return manifestPath;
}

/** The system tools the layout is made with, in pipeline order. */
export const EC2_LAYOUT_TOOLS = ['tar', 'gzip', 'openssl'] as const;

export interface MadeEc2LayoutBundle {
  readonly manifestPath: string;
  /** SHA-1 (hex) of the tar stream, as the manifest carries it. */
  readonly tarDigest: string;
  readonly bundledBytes: number;
  readonly parts: number;
}

/** Resolves when `child` exits with 0; otherwise fails naming `what` and its last complaint. */
function exited(child: ChildProcess, what: string): Promise<void> {
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4096)));
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new AmiError(`bench: ${what} could not run: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        const why = stderr.trim().split('\n').pop() || (signal ? `killed by ${signal}` : `exit code ${code}`);
        reject(new AmiError(`bench: ${what} failed: ${why}`));
      }
    });
  });
}

/**
 * Bundles `image` into `dir` as ec2-ami-tools does: the system's `tar --format=gnu -cS` of the
 * image, `gzip -9`, `openssl enc -aes-128-cbc` with a fresh throw-away key and IV (openssl takes a
 * raw key only on its command line; it protects nothing but this run's scratch bundle), then
 * parts and a manifest signed with `keyFile`. No shell: the three tools are piped here, and the
 * tar stream's SHA-1 is taken as it passes. The member is named after the image's file name.
 */
export async function makeEc2LayoutBundle(
  image: string,
  dir: string,
  keys: { readonly keyFile: string; readonly certFile: string },
  signal?: AbortSignal,
): Promise<MadeEc2LayoutBundle> {
  const imageName = path.basename(image);
  const keyHex = crypto.randomBytes(16).toString('hex');
  const ivHex = crypto.randomBytes(16).toString('hex');
  const encryptedFile = path.join(dir, `${imageName}.enc`);
  const encrypted = await fs.promises.open(encryptedFile, 'wx', 0o600);
  const opts = signal ? { signal } : {};
  let tarDigest: string;
  try {
    const tar = spawn('tar', ['--format=gnu', '-cSf', '-', '-C', path.dirname(image), imageName], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...opts,
    });
    const gzip = spawn('gzip', ['-9'], { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    const openssl = spawn('openssl', ['enc', '-e', '-aes-128-cbc', '-K', keyHex, '-iv', ivHex], {
      stdio: ['pipe', encrypted.fd, 'pipe'],
      ...opts,
    });
    const sha1 = crypto.createHash('sha1');
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, done) {
        sha1.update(chunk);
        done(null, chunk);
      },
    });
    await Promise.all([
      exited(tar, 'tar -cS of the image'),
      exited(gzip, 'gzip -9'),
      exited(openssl, 'openssl enc -aes-128-cbc'),
      pipeline(tar.stdout, hashing, gzip.stdin),
      pipeline(gzip.stdout, openssl.stdin!),
    ]);
    tarDigest = sha1.digest('hex');
  } finally {
    await encrypted.close();
  }
  try {
    const { size } = await fs.promises.stat(encryptedFile);
    const manifestPath = await writeEc2LayoutBundle({
      encryptedFile,
      keyHex,
      ivHex,
      tarDigest,
      imageName,
      imageSize: (await fs.promises.stat(image)).size,
      keyFile: keys.keyFile,
      certFile: keys.certFile,
      dir,
    });
    return { manifestPath, tarDigest, bundledBytes: size, parts: partCount(size) };
  } finally {
    await fs.promises.rm(encryptedFile, { force: true });
  }
}
