// Bundles and images for the S3 integration tests, made with amibundle's own bundler and the
// fixtures' test keys; plus small file helpers.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../support/cli.js';
import { keysDir } from '../support/fixtures.js';

export const ACCOUNT = '123456789012';

/** An incompressible image: a bundle of it has ceil(bytes / 10 MiB) parts. */
export function writeRandomImage(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < bytes;) {
      const n = Math.min(4 * 1024 * 1024, bytes - done);
      fs.writeSync(fd, crypto.randomBytes(n));
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A sparse image: holes everywhere but the given [offset, length] extents of random data. */
export function writeSparseImage(file: string, size: number, extents: readonly [number, number][]): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, size);
    for (const [offset, length] of extents) fs.writeSync(fd, crypto.randomBytes(length), 0, length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

export function bundleArgs(image: string, destination: string): string[] {
  return [
    '--batch',
    '-i',
    image,
    '-k',
    path.join(keysDir, 'user-key.pem'),
    '-c',
    path.join(keysDir, 'user-cert.pem'),
    '-u',
    ACCOUNT,
    '--ec2cert',
    path.join(keysDir, 'ec2-cert.pem'),
    '-r',
    'x86_64',
    '-d',
    destination,
  ];
}

/** Bundles with `ec2-bundle-image` into `destination`; returns the manifest path. */
export async function bundleWithCli(image: string, destination: string): Promise<string> {
  const r = await runCli('ec2-bundle-image', bundleArgs(image, destination));
  if (r.code !== 0) throw new Error(`ec2-bundle-image failed (${r.code}): ${r.stderr}`);
  return path.join(destination, `${path.basename(image)}.manifest.xml`);
}

export function sha256(data: Buffer | string): string {
  return crypto
    .createHash('sha256')
    .update(typeof data === 'string' ? fs.readFileSync(data) : data)
    .digest('hex');
}

/** Files of a directory (no hidden temporaries expected), sorted. */
export function listDir(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}
