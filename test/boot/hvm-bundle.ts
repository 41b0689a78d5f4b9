// A bundle made the way ec2-ami-tools made every bundle being rescued today: `tar -cS | gzip -9 |
// openssl enc -aes-128-cbc` in one stream (no block marks), cut into 10 MiB parts, the manifest
// signed with the fixtures' user key. Built with the machine's own tools, streamed through files,
// so an image of hundreds of MiB never sits in memory.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { wrapHex } from '../../src/crypto/key-wrap.js';
import { loadCertificate, loadPrivateKey } from '../../src/crypto/keys.js';
import { signHex } from '../../src/crypto/signature.js';
import type { Manifest } from '../../src/format/manifest.js';
import { serializeSigned, serializeUnsigned, signedBytes } from '../../src/format/manifest-writer.js';
import { partName } from '../../src/format/part-name.js';
import { key } from '../support/fixtures.js';
import { runLogged } from './run.js';

const PART = 10 * 1024 * 1024;

function sha1File(file: string): string {
  return execFileSync('sha1sum', [file], { encoding: 'utf8' }).split(' ')[0]!;
}

/**
 * Bundles `image` into `dir` in the ec2-ami-tools layout; returns the manifest's path. The
 * pipeline runs without blocking the test's event loop (gzip -9 of a system takes minutes).
 */
export async function referenceLayoutBundle(image: string, dir: string): Promise<string> {
  const name = path.basename(image);
  const keyHex = crypto.randomBytes(16).toString('hex');
  const ivHex = crypto.randomBytes(16).toString('hex');
  const tarFile = path.join(dir, 'stream.tar');
  const encFile = path.join(dir, 'stream.enc');
  await runLogged(
    'bash',
    [
      '-o',
      'pipefail',
      '-c',
      `tar --format=gnu -cSf - -C "$1" "$2" | tee "$3" | gzip -9 | openssl enc -e -aes-128-cbc -K ${keyHex} -iv ${ivHex} > "$4"`,
      'bundle',
      path.dirname(image),
      name,
      tarFile,
      encFile,
    ],
    { timeLimitMs: 30 * 60_000, what: 'the ec2-ami-tools layout pipeline (tar -cS | gzip -9 | openssl enc)' },
  );
  const digest = sha1File(tarFile);
  fs.rmSync(tarFile);
  const bundledSize = fs.statSync(encFile).size;
  const count = Math.ceil(bundledSize / PART);
  const fd = fs.openSync(encFile, 'r');
  const buf = Buffer.alloc(PART);
  const parts = [];
  for (let index = 0; index < count; index++) {
    const n = fs.readSync(fd, buf, 0, PART, index * PART);
    const filename = partName(name, index, count);
    fs.writeFileSync(path.join(dir, filename), buf.subarray(0, n));
    parts.push({
      index,
      filename,
      digest: crypto.createHash('sha1').update(buf.subarray(0, n)).digest('hex'),
    });
  }
  fs.closeSync(fd);
  fs.rmSync(encFile);
  const userCert = loadCertificate(key('user-cert.pem'));
  const ec2Cert = loadCertificate(key('ec2-cert.pem'));
  const model: Manifest = {
    version: '2007-10-10',
    bundler: { name: 'ec2-ami-tools', version: '1.5.3', release: '0' },
    machineConfiguration: { architecture: 'x86_64' },
    image: {
      name,
      user: '123456789012',
      type: 'machine',
      digest,
      digestAlgorithm: 'SHA1',
      size: fs.statSync(image).size,
      bundledSize,
      ec2EncryptedKey: wrapHex(ec2Cert.publicKey, keyHex),
      userEncryptedKey: wrapHex(userCert.publicKey, keyHex),
      ec2EncryptedIv: wrapHex(ec2Cert.publicKey, ivHex),
      userEncryptedIv: wrapHex(userCert.publicKey, ivHex),
      keyAlgorithm: 'AES-128-CBC',
      parts,
    },
  };
  const unsigned = serializeUnsigned(model);
  const xml = serializeSigned(unsigned, signHex(loadPrivateKey(key('user-key.pem')), signedBytes(unsigned)));
  const manifest = path.join(dir, `${name}.manifest.xml`);
  fs.writeFileSync(manifest, xml.toString());
  return manifest;
}
