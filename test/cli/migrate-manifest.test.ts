// ec2-migrate-manifest / amibundle migrate-manifest on copies of the golden bundles: the EC2 copy
// of the key is re-wrapped for another certificate, the result verifies and still unbundles
// with the original parts, the backup is the original, and refusals change nothing.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aesMaterial, createUnwrapper } from '../../src/crypto/key-wrap.js';
import { loadPrivateKey } from '../../src/crypto/keys.js';
import { createSelfSigned } from '../../src/crypto/self-signed.js';
import { signHex } from '../../src/crypto/signature.js';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { runCli } from '../support/cli.js';
import { bundledCases, keysDir, tempDir, type FixtureCase } from '../support/fixtures.js';

const userKey = path.join(keysDir, 'user-key.pem');
const userCert = path.join(keysDir, 'user-cert.pem');
const creds = ['-c', userCert, '-k', userKey];

let tmp: { dir: string; remove: () => void };
/** A throw-away key and certificate standing in for another partition's EC2 key. */
let newEc2: { keyFile: string; certFile: string; key: ReturnType<typeof loadPrivateKey> };
beforeAll(async () => {
  tmp = tempDir('migrate');
  const made = await createSelfSigned({ bits: 2048, commonName: 'throw-away partition EC2 key', days: 1 });
  newEc2 = {
    keyFile: path.join(tmp.dir, 'new-ec2-key.pem'),
    certFile: path.join(tmp.dir, 'new-ec2-cert.pem'),
    key: loadPrivateKey(made.privateKeyPem),
  };
  fs.writeFileSync(newEc2.keyFile, made.privateKeyPem, { mode: 0o600 });
  fs.writeFileSync(newEc2.certFile, made.certificatePem);
});
afterAll(() => tmp.remove());

/** A writable copy of a fixture bundle (manifest and parts); returns the manifest path. */
function copyBundle(c: FixtureCase): string {
  const src = path.dirname(path.join(c.dir, c.expected!.manifest_file));
  const dir = fs.mkdtempSync(path.join(tmp.dir, `${c.case}-`));
  for (const f of fs.readdirSync(src)) {
    fs.copyFileSync(path.join(src, f), path.join(dir, f));
    fs.chmodSync(path.join(dir, f), 0o644);
  }
  return path.join(dir, path.basename(c.expected!.manifest_file));
}

function unwrap(hex: string): string {
  return aesMaterial(createUnwrapper(newEc2.key).unwrap(hex, 'test'), 'test').toString('hex');
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** The signature checked by openssl itself over the signed region. */
function opensslVerifies(manifestFile: string): boolean {
  const parsed = parseManifest(fs.readFileSync(manifestFile));
  const dir = fs.mkdtempSync(path.join(tmp.dir, 'ossl-'));
  fs.writeFileSync(path.join(dir, 'data'), parsed.signedData);
  fs.writeFileSync(path.join(dir, 'sig'), Buffer.from(parsed.manifest.signature!, 'hex'));
  const pub = execFileSync('openssl', ['x509', '-in', userCert, '-pubkey', '-noout']);
  fs.writeFileSync(path.join(dir, 'pub.pem'), pub);
  try {
    execFileSync(
      'openssl',
      [
        'dgst',
        '-sha1',
        '-verify',
        path.join(dir, 'pub.pem'),
        '-signature',
        path.join(dir, 'sig'),
        path.join(dir, 'data'),
      ],
      { stdio: 'pipe' },
    );
    return true;
  } catch {
    return false;
  }
}

describe('migrating every golden bundle to another EC2 certificate', () => {
  for (const c of bundledCases()) {
    it(c.case, async () => {
      const manifest = copyBundle(c);
      const original = fs.readFileSync(manifest);
      const before = parseManifest(original).manifest;
      const mc = before.machineConfiguration;
      // Keep whatever kernel/ramdisk the bundle has: explicit ids need no mapping.
      const ids = [
        ...(mc?.kernelId ? ['--kernel', mc.kernelId] : []),
        ...(mc?.ramdiskId ? ['--ramdisk', mc.ramdiskId] : []),
      ];
      const r = await runCli('ec2-migrate-manifest', [
        '-m',
        manifest,
        ...creds,
        '--ec2cert',
        newEc2.certFile,
        '--region',
        'eu-west-1',
        ...ids,
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('Backing up manifest...');
      expect(r.stdout).toContain(`Successfully migrated ${manifest}`);
      expect(r.stdout).toContain('It is now suitable for use in eu-west-1.');
      expect(fs.readFileSync(`${manifest}.bak`).equals(original)).toBe(true);

      const after = parseManifest(fs.readFileSync(manifest)).manifest;
      expect(unwrap(after.image.ec2EncryptedKey)).toBe(c.expected!.key_material.key_ascii_hex);
      expect(unwrap(after.image.ec2EncryptedIv)).toBe(c.expected!.key_material.iv_ascii_hex);
      expect(after.image.userEncryptedKey).toBe(before.image.userEncryptedKey);
      expect(after.machineConfiguration).toEqual(before.machineConfiguration);
      expect(opensslVerifies(manifest)).toBe(true);

      // The original parts restore the identical image through the migrated manifest, with the
      // user's key and, via the re-wrapped copy, with the new EC2 key.
      const out = fs.mkdtempSync(path.join(tmp.dir, 'out-'));
      const u = await runCli('ec2-unbundle', [
        '-m',
        manifest,
        '-k',
        userKey,
        '-s',
        path.dirname(manifest),
        '-d',
        out,
        '--cert',
        userCert,
      ]);
      expect(u.code, u.stderr).toBe(0);
      expect(sha256(path.join(out, c.expected!.name))).toBe(c.image.sha256);
      if (c.case === 'a-tiny') {
        const out2 = fs.mkdtempSync(path.join(tmp.dir, 'out-ec2-'));
        const v = await runCli('amibundle', [
          'unbundle',
          '-m',
          manifest,
          '-k',
          newEc2.keyFile,
          '--ec2-key',
          '-s',
          path.dirname(manifest),
          '-d',
          out2,
        ]);
        expect(v.code, v.stderr).toBe(0);
        expect(sha256(path.join(out2, c.expected!.name))).toBe(c.image.sha256);
      }
    });
  }
});

describe('refusals and choices', () => {
  const tiny = (): FixtureCase => bundledCases().find((c) => c.case === 'a-tiny')!;
  const options = (): FixtureCase => bundledCases().find((c) => c.case === 'd-options')!;

  it('a second run refuses (exit 2) and changes nothing', async () => {
    const manifest = copyBundle(tiny());
    const first = await runCli('amibundle', [
      'migrate-manifest',
      '-m',
      manifest,
      ...creds,
      '--partition',
      'aws',
    ]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('It is now suitable for use in partition aws.');
    const migrated = fs.readFileSync(manifest);
    const second = await runCli('amibundle', ['migrate-manifest', '-m', manifest, ...creds]);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/^ERROR: backup file .*\.bak already exists; nothing was changed/);
    expect(fs.readFileSync(manifest).equals(migrated)).toBe(true);
  });

  it('a tampered manifest fails authentication (exit 254) before any backup', async () => {
    const manifest = copyBundle(tiny());
    fs.writeFileSync(
      manifest,
      fs.readFileSync(manifest, 'utf8').replace('<size>102733</size>', '<size>102734</size>'),
    );
    const r = await runCli('ec2-migrate-manifest', ['-m', manifest, ...creds, '--no-mapping']);
    expect(r.code).toBe(254);
    expect(r.stderr.trim()).toBe(`ERROR: Bad manifest '${manifest}': Manifest fails authentication.`);
    expect(fs.existsSync(`${manifest}.bak`)).toBe(false);
  });

  it('--sign-unverified re-signs a manifest that does not verify, with a warning; a wrapped one is still refused', async () => {
    const manifest = copyBundle(tiny());
    const tampered = fs
      .readFileSync(manifest, 'utf8')
      .replace('<user>123456789012</user>', '<user>123456789013</user>');
    fs.writeFileSync(manifest, tampered);
    expect(opensslVerifies(manifest)).toBe(false);
    const r = await runCli('ec2-migrate-manifest', [
      '-m',
      manifest,
      ...creds,
      '--no-mapping',
      '--batch',
      '--sign-unverified',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/does not verify with -c; re-signing it with -k anyway \(--sign-unverified\)/);
    expect(fs.readFileSync(`${manifest}.bak`, 'utf8')).toBe(tampered);
    expect(opensslVerifies(manifest)).toBe(true);

    const wrapped = copyBundle(tiny());
    const xml = fs.readFileSync(wrapped, 'utf8');
    const pair = xml.slice(xml.indexOf('<machine_configuration>'), xml.indexOf('<signature>'));
    fs.writeFileSync(
      wrapped,
      xml.replace('<machine_configuration>', `<wrapper>${pair}</wrapper><machine_configuration>`),
    );
    const w = await runCli('ec2-migrate-manifest', [
      '-m',
      wrapped,
      ...creds,
      '--no-mapping',
      '--batch',
      '--sign-unverified',
    ]);
    expect(w.code).toBe(254);
    expect(w.stderr).toMatch(/unknown element <wrapper>/);
    expect(fs.existsSync(`${wrapped}.bak`)).toBe(false);
  });

  it('--kernel and --ramdisk land in the manifest', async () => {
    const manifest = copyBundle(options());
    const r = await runCli('ec2-migrate-manifest', [
      '-m',
      manifest,
      ...creds,
      '--kernel',
      'aki-0badf00d',
      '--ramdisk',
      'ari-0000beef',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const text = fs.readFileSync(manifest, 'utf8');
    expect(text).toContain('<kernel_id>aki-0badf00d</kernel_id><ramdisk_id>ari-0000beef</ramdisk_id>');
    expect(opensslVerifies(manifest)).toBe(true);
  });

  it('asks for automatic mapping: says it is not supported and what to pass (exit 1), changes nothing', async () => {
    const manifest = copyBundle(options());
    const original = fs.readFileSync(manifest);
    const r = await runCli('ec2-migrate-manifest', [
      '-m',
      manifest,
      ...creds,
      '--region',
      'us-west-2',
      '--kernel',
      'aki-11111111',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('automatic kernel/ramdisk mapping is not supported');
    expect(r.stderr).toContain('ramdisk ari-87654321');
    expect(r.stderr).toContain('--ramdisk ID');
    expect(r.stderr).toContain('--no-mapping');
    expect(fs.readFileSync(manifest).equals(original)).toBe(true);
    expect(fs.existsSync(`${manifest}.bak`)).toBe(false);
  });

  it('--no-mapping drops the ids after a confirmation: declined changes nothing, --batch accepts', async () => {
    const manifest = copyBundle(options());
    const original = fs.readFileSync(manifest);
    const declined = await runCli('ec2-migrate-manifest', ['-m', manifest, ...creds, '--no-mapping'], {
      input: 'n\n',
    });
    expect(declined.code).toBe(1);
    expect(declined.stderr).toContain('This operation will remove the kernel and/or ramdisk');
    expect(fs.readFileSync(manifest).equals(original)).toBe(true);
    expect(fs.existsSync(`${manifest}.bak`)).toBe(false);
    const accepted = await runCli('ec2-migrate-manifest', [
      '-m',
      manifest,
      ...creds,
      '--no-mapping',
      '--batch',
    ]);
    expect(accepted.code, accepted.stderr).toBe(0);
    const after = parseManifest(fs.readFileSync(manifest)).manifest;
    expect(after.machineConfiguration?.kernelId).toBeUndefined();
    expect(after.machineConfiguration?.ramdiskId).toBeUndefined();
    expect(after.machineConfiguration?.blockDeviceMapping).toHaveLength(3);
  });

  it('--partition and --region pick the shipped EC2 certificate of the partition', async () => {
    const cnManifest = copyBundle(tiny());
    const cn = await runCli('amibundle', [
      'migrate-manifest',
      '-m',
      cnManifest,
      ...creds,
      '--region',
      'cn-north-1',
      '--json',
    ]);
    expect(cn.code, cn.stderr).toBe(0);
    const done = cn.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.type === 'done')!;
    expect(done).toMatchObject({ partition: 'aws-cn', region: 'cn-north-1', sourceVersion: '2007-10-10' });
    expect(String(done.ec2Cert)).toMatch(/cert-ec2-cn-north-1\.pem$/);
    // The China certificate is 2048-bit, the aws one 1024-bit: the wrapped key's length shows which.
    const cnKey = parseManifest(fs.readFileSync(cnManifest)).manifest.image.ec2EncryptedKey;
    expect(cnKey).toHaveLength(512);
    const awsManifest = copyBundle(tiny());
    const aws = await runCli('amibundle', [
      'migrate-manifest',
      '-m',
      awsManifest,
      ...creds,
      '--partition',
      'aws',
    ]);
    expect(aws.code, aws.stderr).toBe(0);
    expect(parseManifest(fs.readFileSync(awsManifest)).manifest.image.ec2EncryptedKey).toHaveLength(256);
    const clash = await runCli('amibundle', [
      'migrate-manifest',
      '-m',
      awsManifest,
      ...creds,
      '--partition',
      'aws',
      '--region',
      'cn-north-1',
    ]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain('partition aws-cn');
  });

  it('migrates a version-3 manifest, which then restores the image with the original parts', async () => {
    const c = tiny();
    const manifest = copyBundle(c);
    const xml = fs.readFileSync(manifest, 'utf8');
    const image = xml
      .slice(xml.indexOf('<image>'), xml.indexOf('</image>') + 8)
      .replace('<type>machine</type>', '');
    const bundler = xml.slice(xml.indexOf('<bundler>'), xml.indexOf('</bundler>') + 10);
    const sig = signHex(loadPrivateKey(fs.readFileSync(userKey, 'utf8')), Buffer.from(image));
    const v3 = `<?xml version='1.0'?><manifest><version>3</version>${bundler}${image}<signature>${sig}</signature></manifest>`;
    fs.writeFileSync(manifest, v3);
    const r = await runCli('ec2-migrate-manifest', ['-m', manifest, ...creds, '--ec2cert', newEc2.certFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(`${manifest}.bak`, 'utf8')).toBe(v3);
    const after = parseManifest(fs.readFileSync(manifest)).manifest;
    expect(after.version).toBe('2007-10-10');
    expect(after.machineConfiguration?.architecture).toBe('i386');
    expect(after.image.type).toBe('machine');
    expect(unwrap(after.image.ec2EncryptedKey)).toBe(c.expected!.key_material.key_ascii_hex);
    const out = fs.mkdtempSync(path.join(tmp.dir, 'out-v3-'));
    const u = await runCli('ec2-unbundle', [
      '-m',
      manifest,
      '-k',
      userKey,
      '-s',
      path.dirname(manifest),
      '-d',
      out,
      '--cert',
      userCert,
    ]);
    expect(u.code, u.stderr).toBe(0);
    expect(sha256(path.join(out, c.expected!.name))).toBe(c.image.sha256);
  });

  it('refuses unknown versions with the reference messages', async () => {
    const original = fs.readFileSync(copyBundle(tiny()), 'utf8');
    for (const [version, message] of [
      ['20080101', 'Manifest is too new for this tool to handle. Please upgrade.'],
      ['2009-01-01', 'Unrecognised manifest version.'],
    ] as const) {
      const manifest = copyBundle(tiny());
      fs.writeFileSync(manifest, original.replace('2007-10-10</version>', `${version}</version>`));
      const r = await runCli('ec2-migrate-manifest', ['-m', manifest, ...creds]);
      expect(r.code).toBe(254);
      expect(r.stderr.trim()).toBe(`ERROR: Bad manifest '${manifest}': ${message}`);
    }
  });

  it('--help lists every option and two examples; --manual explains the re-wrapping', async () => {
    const help = await runCli('ec2-migrate-manifest', ['--help']);
    expect(help.code).toBe(0);
    for (const flag of [
      '--cert',
      '--privatekey',
      '--manifest',
      '--access-key',
      '--secret-key',
      '--ec2cert',
      '--partition',
      '--kernel',
      '--ramdisk',
      '--[no-]mapping',
      '--region',
    ])
      expect(help.stdout).toContain(flag);
    expect(help.stdout.split('EXAMPLES')[1]!.trim().split('\n')).toHaveLength(2);
    const manual = await runCli('amibundle', ['migrate-manifest', '--manual']);
    expect(manual.code).toBe(0);
    expect(manual.stdout).toContain('never used it');
  });
});
