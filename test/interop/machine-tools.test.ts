// Our bundles restore with nothing but the machine's own tools, as EC2 and ec2-unbundle do:
// openssl pkeyutl unwraps the key and IV, cat | openssl enc -d | gunzip | tar -xS restores the
// image, and openssl dgst verifies the signature over the two raw manifest substrings.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { runCli } from '../support/cli.js';
import { keysDir, tempDir } from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('machine-tools');
});
afterAll(() => tmp.remove());

const userKey = path.join(keysDir, 'user-key.pem');
const userCert = path.join(keysDir, 'user-cert.pem');
const ec2Cert = path.join(keysDir, 'ec2-cert.pem');
const ec2Key = path.join(keysDir, 'ec2-key.pem');

function makeSparseImage(file: string): void {
  const fd = fs.openSync(file, 'w');
  // Random data (incompressible) spanning more than one 10 MiB part, text, and holes.
  fs.writeSync(fd, crypto.randomBytes(11 * 1024 * 1024), 0, 11 * 1024 * 1024, 4096);
  fs.writeSync(fd, Buffer.from('hello sparse world\n'.repeat(10000)), 0, 190000, 30 * 1024 * 1024);
  fs.ftruncateSync(fd, 48 * 1024 * 1024);
  fs.closeSync(fd);
}

function unwrap(keyFile: string, hex: string, name: string): string {
  const blob = path.join(tmp.dir, `${name}.bin`);
  fs.writeFileSync(blob, Buffer.from(hex, 'hex'));
  return execFileSync('openssl', [
    'pkeyutl',
    '-decrypt',
    '-inkey',
    keyFile,
    '-pkeyopt',
    'rsa_padding_mode:pkcs1',
    '-in',
    blob,
  ]).toString('latin1');
}

describe.each(['gzip default', 'fast', 'best'])(
  'a %s bundle restores with openssl | gunzip | tar',
  (mode) => {
    it('round trip with machine tools', async () => {
      const work = fs.mkdtempSync(path.join(tmp.dir, 'mt-'));
      const image = path.join(work, 'disk.img');
      makeSparseImage(image);
      const dest = path.join(work, 'bundle');
      fs.mkdirSync(dest);
      const extra = mode === 'fast' ? ['--fast'] : mode === 'best' ? ['--best'] : [];
      const r = await runCli('ec2-bundle-image', [
        '-i',
        image,
        '-k',
        userKey,
        '-c',
        userCert,
        '-u',
        '123456789012',
        '--ec2cert',
        ec2Cert,
        '-d',
        dest,
        '-r',
        'x86_64',
        '--batch',
        ...extra,
      ]);
      expect(r.code, r.stderr).toBe(0);
      const manifestFile = path.join(dest, 'disk.img.manifest.xml');
      const parsed = parseManifest(fs.readFileSync(manifestFile));
      const m = parsed.manifest;
      expect(m.image.parts.length).toBeGreaterThanOrEqual(2);

      // Key and IV: the RSA plaintext is the 32-character hex string, for both certificates.
      const keyHex = unwrap(userKey, m.image.userEncryptedKey, 'k');
      const ivHex = unwrap(userKey, m.image.userEncryptedIv, 'iv');
      expect(keyHex).toMatch(/^[0-9a-f]{32}$/);
      expect(ivHex).toMatch(/^[0-9a-f]{32}$/);
      expect(unwrap(ec2Key, m.image.ec2EncryptedKey, 'ek')).toBe(keyHex);
      expect(unwrap(ec2Key, m.image.ec2EncryptedIv, 'eiv')).toBe(ivHex);

      // Signature over the raw machine_configuration + image substrings.
      const raw = fs.readFileSync(manifestFile, 'latin1');
      const signed =
        raw.slice(raw.indexOf('<machine_configuration>'), raw.indexOf('</machine_configuration>') + 24) +
        raw.slice(raw.indexOf('<image>'), raw.indexOf('</image>') + 8);
      fs.writeFileSync(path.join(work, 'signed.bin'), signed, 'latin1');
      fs.writeFileSync(path.join(work, 'sig.bin'), Buffer.from(m.signature!, 'hex'));
      execFileSync('sh', ['-c', `openssl x509 -in "${userCert}" -pubkey -noout > "${work}/pub.pem"`]);
      const verified = execFileSync('openssl', [
        'dgst',
        '-sha1',
        '-verify',
        `${work}/pub.pem`,
        '-signature',
        `${work}/sig.bin`,
        `${work}/signed.bin`,
      ]).toString();
      expect(verified.trim()).toBe('Verified OK');

      // Parts: each SHA-1 as listed; every part but the last exactly 10 MiB.
      for (const [i, p] of m.image.parts.entries()) {
        const data = fs.readFileSync(path.join(dest, p.filename));
        expect(crypto.createHash('sha1').update(data).digest('hex')).toBe(p.digest);
        if (i < m.image.parts.length - 1) expect(data.length).toBe(10 * 1024 * 1024);
      }

      // The restore pipeline ec2-unbundle runs, with the system's tools.
      const out = path.join(work, 'out');
      fs.mkdirSync(out);
      const parts = m.image.parts.map((p) => `"${path.join(dest, p.filename)}"`).join(' ');
      const decrypt = `cat ${parts} | openssl enc -d -aes-128-cbc -K ${keyHex} -iv ${ivHex} | gunzip`;
      const digest = execFileSync('bash', ['-o', 'pipefail', '-c', `${decrypt} | openssl sha1`])
        .toString()
        .trim()
        .split(' ')
        .pop();
      expect(digest).toBe(m.image.digest);
      execFileSync('bash', ['-o', 'pipefail', '-c', `${decrypt} | tar -xS -C "${out}"`]);
      const restored = path.join(out, 'disk.img');
      execFileSync('cmp', [restored, image]);
    });
  },
);
