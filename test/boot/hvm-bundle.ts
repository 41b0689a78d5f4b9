// A bundle made the way ec2-ami-tools made every bundle being rescued today: `tar -cS | gzip -9 |
// openssl enc -aes-128-cbc` in one stream (no block marks), cut into 10 MiB parts with a manifest
// signed with the fixtures' user key (the bench's writeEc2LayoutBundle). Built with the machine's
// own tools, streamed through files, so an image of hundreds of MiB never sits in memory.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeEc2LayoutBundle } from '../../src/bench/ec2-layout-bundle.js';
import { keysDir } from '../support/fixtures.js';
import { runLogged } from './run.js';

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
  try {
    return await writeEc2LayoutBundle({
      encryptedFile: encFile,
      keyHex,
      ivHex,
      tarDigest: digest,
      imageName: name,
      imageSize: fs.statSync(image).size,
      keyFile: path.join(keysDir, 'user-key.pem'),
      certFile: path.join(keysDir, 'user-cert.pem'),
      ec2CertFile: path.join(keysDir, 'ec2-cert.pem'),
      dir,
    });
  } finally {
    fs.rmSync(encFile);
  }
}
