// A bundle laid out as ec2-ami-tools writes one, for the benchmark: the encrypted stream comes
// from the real `tar -cS | gzip -9 | openssl enc -aes-128-cbc` pipeline (one gzip member, no
// block marks), cut here into 10 MiB parts with a signed manifest around them, so `unbundle` can
// be timed on exactly the bundles people are rescuing. Throw-away keys only (bench-keys.ts).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
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
