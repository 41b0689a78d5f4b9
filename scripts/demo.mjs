#!/usr/bin/env node
// npm run demo: bundle a generated sample image with the test-only keys in samples/, verify the
// bundle, restore it, and show that the restored image is identical, holes included.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const samples = path.join(root, 'samples');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'amibundle-demo-'));
const cli = (...args) => {
  console.log(`\n$ amibundle ${args.join(' ')}`);
  execFileSync(process.execPath, [path.join(root, 'bin/amibundle.js'), ...args], { stdio: 'inherit' });
};
const sha256 = (f) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

try {
  // Keys must not be readable by others; git does not keep file modes, so copy them privately.
  const keys = path.join(work, 'keys');
  fs.mkdirSync(keys, { mode: 0o700 });
  for (const f of fs.readdirSync(samples).filter((f) => f.endsWith('.pem')))
    fs.copyFileSync(path.join(samples, f), path.join(keys, f));
  for (const f of fs.readdirSync(keys)) fs.chmodSync(path.join(keys, f), 0o600);

  // A 64 MiB sparse disk image: a few extents of text and random data, the rest holes.
  const image = path.join(work, 'sample.img');
  const fd = fs.openSync(image, 'w');
  const text = Buffer.from('amibundle sample image: text compresses well. '.repeat(23).slice(0, 1023) + '\n');
  for (const [offset, length, kind] of [
    [0, 1 << 20, 'text'],
    [8 << 20, 2 << 20, 'random'],
    [20 << 20, 1 << 20, 'text'],
    [40 << 20, 2 << 20, 'text'],
    [63 << 20, 1 << 20, 'random'],
  ]) {
    const data =
      kind === 'random' ? crypto.randomBytes(length) : Buffer.concat(Array(length / 1024).fill(text));
    fs.writeSync(fd, data, 0, length, offset);
  }
  fs.ftruncateSync(fd, 64 << 20);
  fs.closeSync(fd);
  const st = fs.statSync(image);
  console.log(`Sample image ${image}: ${st.size} bytes apparent, ${st.blocks * 512} bytes allocated`);

  const bundle = path.join(work, 'bundle');
  const restored = path.join(work, 'restored');
  fs.mkdirSync(bundle);
  fs.mkdirSync(restored);
  const k = path.join(keys, 'sample-key.pem');
  const c = path.join(keys, 'sample-cert.pem');
  cli(
    'bundle-image',
    '-i',
    image,
    '-k',
    k,
    '-c',
    c,
    '-u',
    '123456789012',
    '-r',
    'x86_64',
    '--ec2cert',
    path.join(keys, 'sample-ec2-cert.pem'),
    '-d',
    bundle,
    '-p',
    'sample',
    '--batch',
  );
  console.log(`\nBundle directory: ${fs.readdirSync(bundle).join(', ')}`);
  cli('verify', '-m', path.join(bundle, 'sample.manifest.xml'), '-k', k, '-c', c);
  cli(
    'unbundle',
    '-m',
    path.join(bundle, 'sample.manifest.xml'),
    '-k',
    k,
    '-s',
    bundle,
    '-d',
    restored,
    '--cert',
    c,
  );

  const out = path.join(restored, 'sample');
  const rt = fs.statSync(out);
  const same = sha256(out) === sha256(image);
  console.log(`\nRestored ${out}: ${rt.size} bytes apparent, ${rt.blocks * 512} bytes allocated`);
  console.log(
    same ? 'Restored image is byte-identical to the original.' : 'MISMATCH: restored image differs!',
  );
  if (!same) process.exitCode = 1;
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
