// amibundle keygen: a key and a matching self-signed certificate, mode 0600 whatever the umask,
// that bundle-image and unbundle accept; existing files are kept unless --force.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { keysDir, projectRoot, tempDir } from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('keygen');
});
afterAll(() => tmp.remove());

const fresh = (): string => fs.mkdtempSync(path.join(tmp.dir, 'k-'));
const mode = (file: string): number => fs.statSync(file).mode & 0o777;

function checkPair(
  keyFile: string,
  certFile: string,
): { key: crypto.KeyObject; cert: crypto.X509Certificate } {
  const pem = fs.readFileSync(keyFile, 'utf8');
  expect(pem.startsWith('-----BEGIN PRIVATE KEY-----')).toBe(true);
  const key = crypto.createPrivateKey(pem);
  const cert = new crypto.X509Certificate(fs.readFileSync(certFile));
  expect(cert.checkPrivateKey(key)).toBe(true);
  expect(cert.verify(cert.publicKey)).toBe(true);
  expect(cert.subject).toBe(cert.issuer);
  return { key, cert };
}

describe('amibundle keygen', () => {
  it('writes pk-amibundle.pem and cert-amibundle.pem (0600, matching) that bundle and unbundle accept', async () => {
    const dir = fresh();
    const r = await runCli('amibundle', ['keygen'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const keyFile = path.join(dir, 'pk-amibundle.pem');
    const certFile = path.join(dir, 'cert-amibundle.pem');
    expect(r.stdout).toContain('Wrote private key ./pk-amibundle.pem');
    expect(r.stdout).toContain('Wrote certificate ./cert-amibundle.pem');
    expect(r.stdout).toContain('-k ./pk-amibundle.pem -c ./cert-amibundle.pem');
    expect(mode(keyFile)).toBe(0o600);
    expect(mode(certFile)).toBe(0o600);
    expect(fs.readdirSync(dir).sort()).toEqual(['cert-amibundle.pem', 'pk-amibundle.pem']);
    const { key, cert } = checkPair(keyFile, certFile);
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(cert.subject).toBe('CN=amibundle bundle signing key');
    const text = spawnSync('openssl', ['x509', '-in', certFile, '-noout', '-text'], {
      encoding: 'utf8',
    }).stdout;
    expect(text).toContain('Signature Algorithm: sha256WithRSAEncryption');

    const image = path.join(dir, 'disk.img');
    const data = crypto.randomBytes(200_000);
    fs.writeFileSync(image, data);
    const dest = path.join(dir, 'bundle');
    const out = path.join(dir, 'out');
    fs.mkdirSync(dest);
    fs.mkdirSync(out);
    const b = await runCli('ec2-bundle-image', [
      '-i',
      image,
      '-k',
      keyFile,
      '-c',
      certFile,
      '-u',
      '123456789012',
      '-d',
      dest,
      '-r',
      'x86_64',
      '--ec2cert',
      path.join(keysDir, 'ec2-cert.pem'),
      '--batch',
    ]);
    expect(b.code, b.stderr).toBe(0);
    const manifest = path.join(dest, 'disk.img.manifest.xml');
    const u = await runCli('ec2-unbundle', [
      '-m',
      manifest,
      '-k',
      keyFile,
      '--cert',
      certFile,
      '-s',
      dest,
      '-d',
      out,
    ]);
    expect(u.code, u.stderr).toBe(0);
    expect(fs.readFileSync(path.join(out, 'disk.img')).equals(data)).toBe(true);
  });

  it('refuses to overwrite, writing nothing when either name is taken', async () => {
    const dir = fresh();
    const certFile = path.join(dir, 'cert.pem');
    fs.writeFileSync(certFile, 'precious\n');
    const r = await runCli('amibundle', ['keygen', '-k', 'key.pem', '-c', 'cert.pem'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      'ERROR: the certificate (-c) cert.pem already exists; pass --force to replace it, or choose another name with -k/-c',
    );
    expect(fs.readFileSync(certFile, 'utf8')).toBe('precious\n');
    expect(fs.readdirSync(dir)).toEqual(['cert.pem']);
  });

  it('--force replaces both files, 0600 even over a world-readable file and under umask 000', () => {
    const dir = fresh();
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    fs.writeFileSync(keyFile, 'old key\n', { mode: 0o644 });
    fs.writeFileSync(certFile, 'old cert\n', { mode: 0o666 });
    fs.chmodSync(certFile, 0o666);
    const bin = path.join(projectRoot, 'bin', 'amibundle.js');
    const r = spawnSync(
      'sh',
      [
        '-c',
        'umask 000 && exec "$0" "$@"',
        process.execPath,
        bin,
        'keygen',
        '-k',
        keyFile,
        '-c',
        certFile,
        '--force',
        '--bits',
        '3072',
        '--days',
        '30',
        '--subject',
        'build host 7',
      ],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(mode(keyFile)).toBe(0o600);
    expect(mode(certFile)).toBe(0o600);
    const { key, cert } = checkPair(keyFile, certFile);
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(cert.subject).toBe('CN=build host 7');
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    expect(Math.round(days)).toBe(30);
    expect(fs.readdirSync(dir).sort()).toEqual(['cert.pem', 'key.pem']);
  });

  it('refuses bad values: same file twice, missing directory, bad sizes', async () => {
    const dir = fresh();
    const same = await runCli('amibundle', ['keygen', '-k', 'a.pem', '-c', './a.pem'], { cwd: dir });
    expect(same.code).toBe(1);
    expect(same.stderr.trim()).toBe(
      "ERROR: -k a.pem and -c ./a.pem name the same file; the key and the certificate need one each (see 'amibundle keygen --help')",
    );
    const missing = await runCli('amibundle', ['keygen', '-k', 'nowhere/k.pem'], { cwd: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /^ERROR: cannot write the private key \(-k\) nowhere\/k\.pem: directory \S+ does not exist/,
    );
    const bits = await runCli('amibundle', ['keygen', '--bits', '1024'], { cwd: dir });
    expect(bits.code).toBe(1);
    expect(bits.stderr).toContain('--bits has invalid value');
    const days = await runCli('amibundle', ['keygen', '--days', '0'], { cwd: dir });
    expect(days.code).toBe(1);
    expect(days.stderr).toContain('--days has invalid value');
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('--help shows every option with its default and two examples', async () => {
    const r = await runCli('amibundle', ['keygen', '--help']);
    expect(r.code).toBe(0);
    for (const text of [
      '--privatekey KEY_OUT',
      './pk-amibundle.pem',
      '--cert CERT_OUT',
      './cert-amibundle.pem',
      '--days',
      'Default: 3650',
      '--subject',
      '--bits',
      '2048, 3072, 4096',
      '--force',
    ])
      expect(r.stdout).toContain(text);
    expect(r.stdout.split('EXAMPLES')[1]!.trim().split('\n')).toHaveLength(2);
  });
});
