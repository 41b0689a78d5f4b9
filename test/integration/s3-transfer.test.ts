// upload-bundle, download-bundle and delete-bundle as a user runs them (node bin/ec2-*.js),
// against a real S3 server (Ceph radosgw, which checks SigV4 signatures) started for this file,
// with a TCP proxy in between where faults are needed.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { bundledCases, keysDir, tempDir } from '../support/fixtures.js';
import { startImdsServer } from '../support/imds-server.js';
import { startRadosgw, type Radosgw } from '../support/radosgw.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { bundleWithCli, listDir, sha256, writeRandomImage } from './s3-bundles.js';

const fixture = bundledCases().find((c) => c.case === 'c-multipart')!;
const fixtureBundle = path.join(fixture.dir, 'bundle');
const fixtureManifest = path.join(fixture.dir, fixture.expected!.manifest_file);
const fixtureNames = [fixtureManifest, ...fixture.expected!.parts.map((p) => p.file)]
  .map((f) => path.basename(f))
  .sort();
const PARTS_6 = 6;

let gw: Radosgw;
let work: { dir: string; remove: () => void };
/** A 6-part bundle made by amibundle (55 MiB of random data). */
let six: { dir: string; manifest: string; parts: string[] };

/** The S3 flags for the server, optionally through a proxy. */
function s3Flags(endpoint = gw.endpoint): string[] {
  return ['--url', endpoint, '-a', gw.accessKey, '-s', gw.secretKey];
}

/** Upload flags: public-read, because radosgw refuses aws-exec-read (see s3-wire.test.ts). */
function upFlags(endpoint = gw.endpoint): string[] {
  return [...s3Flags(endpoint), '--acl', 'public-read'];
}

beforeAll(async () => {
  gw = await startRadosgw();
  work = tempDir('s3-transfer');
  const dir = path.join(work.dir, 'six');
  fs.mkdirSync(dir);
  const image = path.join(work.dir, 'six.img');
  writeRandomImage(image, 55 * 1024 * 1024);
  const manifest = await bundleWithCli(image, dir);
  six = { dir, manifest, parts: listDir(dir).filter((f) => f.includes('.part.')) };
  expect(six.parts).toHaveLength(PARTS_6);
}, 240_000);

afterAll(async () => {
  await gw?.stop();
  work?.remove();
});

describe('round trip', () => {
  it('uploads, downloads and unbundles a multi-part bundle: identical image, and the bucket holds exactly the bundle', async () => {
    const up = await runCli('ec2-upload-bundle', [
      '-b',
      'roundtrip/some/prefix',
      '-m',
      fixtureManifest,
      ...upFlags(),
    ]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('Creating bucket...');
    expect(up.stdout).toContain('Manifest uploaded to: roundtrip/some/prefix/multipart.img.manifest.xml');
    expect(up.stdout.trimEnd().split('\n').pop()).toBe('Bundle upload completed.');

    const names = fixtureNames;
    expect(await gw.listKeys('roundtrip')).toEqual(names.map((n) => `some/prefix/${n}`));
    for (const n of names)
      expect(sha256(await gw.getObject('roundtrip', `some/prefix/${n}`))).toBe(
        sha256(path.join(fixtureBundle, n)),
      );

    const down = path.join(work.dir, 'roundtrip-down');
    fs.mkdirSync(down);
    const dl = await runCli('ec2-download-bundle', [
      '-b',
      'roundtrip/some/prefix',
      '-m',
      'multipart.img.manifest.xml',
      '-k',
      path.join(keysDir, 'user-key.pem'),
      '-d',
      down,
      ...s3Flags(),
    ]);
    expect(dl.stderr).toBe('');
    expect(dl.code).toBe(0);
    expect(listDir(down)).toEqual(names);
    for (const n of names) expect(sha256(path.join(down, n))).toBe(sha256(path.join(fixtureBundle, n)));

    const restored = path.join(work.dir, 'roundtrip-restored');
    fs.mkdirSync(restored);
    const un = await runCli('ec2-unbundle', [
      '-m',
      path.join(down, 'multipart.img.manifest.xml'),
      '-k',
      path.join(keysDir, 'user-key.pem'),
      '-s',
      down,
      '-d',
      restored,
    ]);
    expect(un.code, un.stderr).toBe(0);
    expect(sha256(path.join(restored, 'multipart.img'))).toBe(fixture.image.sha256);
  });

  it('a second download keeps the intact parts on disk and fetches nothing but the manifest', async () => {
    await runCli('ec2-upload-bundle', ['-b', 'again', '-m', fixtureManifest, ...upFlags()]);
    const down = path.join(work.dir, 'again-down');
    fs.mkdirSync(down);
    const proxy = new TcpProxy(gw.port);
    await proxy.start();
    try {
      const first = await runCli('ec2-download-bundle', [
        '-b',
        'again',
        '-p',
        'multipart.img',
        '-d',
        down,
        ...s3Flags(proxy.endpoint),
      ]);
      expect(first.code, first.stderr).toBe(0);
      expect(proxy.count('GET', '.part.')).toBe(2);
      // A damaged local copy is replaced; the intact one is kept.
      fs.writeFileSync(path.join(down, 'multipart.img.part.1'), 'truncated');
      proxy.requests.length = 0;
      const second = await runCli('ec2-download-bundle', [
        '-b',
        'again',
        '-p',
        'multipart.img',
        '-d',
        down,
        ...s3Flags(proxy.endpoint),
      ]);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toContain('Skipping multipart.img.part.0 (already downloaded, SHA-1 matches)');
      expect(proxy.count('GET', '.part.0')).toBe(0);
      expect(proxy.count('GET', '.part.1')).toBe(1);
      expect(sha256(path.join(down, 'multipart.img.part.1'))).toBe(
        sha256(path.join(fixtureBundle, 'multipart.img.part.1')),
      );
    } finally {
      await proxy.close();
    }
  });
});

describe('resume', () => {
  it('after the server goes away halfway: exit 3 with a clear line; the re-run sends only the missing parts', async () => {
    const proxy = new TcpProxy(gw.port);
    await proxy.start();
    try {
      // Down in the middle of the fourth part (one part in flight at a time).
      proxy.cutAfterBytes = 3.5 * 10 * 1024 * 1024;
      const first = await runCli('ec2-upload-bundle', [
        '-b',
        'resume/r',
        '-m',
        six.manifest,
        '--concurrency',
        '1',
        ...upFlags(proxy.endpoint),
      ]);
      expect(first.code).toBe(3);
      const line = first.stderr.trim();
      expect(line.split('\n')).toHaveLength(1);
      expect(line).toMatch(
        /^ERROR: S3 PutObject failed for bucket resume, key r\/six\.img\.part\.3: no response, connection (reset|refused) \(ECONN(RESET|REFUSED)\)/,
      );
      const stored = await gw.listKeys('resume');
      expect(stored).toEqual(['r/six.img.part.0', 'r/six.img.part.1', 'r/six.img.part.2']);

      // The server comes back (the gateway itself restarts too; the objects stay).
      await gw.stopGateway();
      await gw.startGateway();
      await proxy.up();
      proxy.requests.length = 0;
      const second = await runCli('ec2-upload-bundle', [
        '-b',
        'resume/r',
        '-m',
        six.manifest,
        ...upFlags(proxy.endpoint),
      ]);
      expect(second.code, second.stderr).toBe(0);
      for (const p of ['six.img.part.0', 'six.img.part.1', 'six.img.part.2'])
        expect(second.stdout).toContain(`Skipping ${p} (already in S3 with the same MD5)`);
      expect(proxy.count('PUT', '.part.')).toBe(3);
      expect(proxy.count('PUT', '/resume/r/six.img.part.3')).toBe(1);
      expect(proxy.count('PUT', '.manifest.xml')).toBe(1);

      const names = [path.basename(six.manifest), ...six.parts].sort();
      expect(await gw.listKeys('resume')).toEqual(names.map((n) => `r/${n}`));
      for (const n of names)
        expect(sha256(await gw.getObject('resume', `r/${n}`))).toBe(sha256(path.join(six.dir, n)));
    } finally {
      await proxy.close();
    }
  });

  it('--part N skips lower parts and --skipmanifest leaves the manifest out', async () => {
    const r = await runCli('ec2-upload-bundle', [
      '-b',
      'partflag',
      '-m',
      six.manifest,
      '--part',
      '4',
      '--skipmanifest',
      ...upFlags(),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Skipping six.img.part.0\n');
    expect(r.stdout).toContain('Skipping manifest.');
    expect(await gw.listKeys('partflag')).toEqual(['six.img.part.4', 'six.img.part.5']);
  });
});

describe('faults through a TCP proxy', () => {
  it('connections dropped mid-request and connections that stall: the upload completes with --retry', async () => {
    const proxy = new TcpProxy(gw.port);
    await proxy.start();
    try {
      let toDrop = 3;
      proxy.dropRequests = (r) => r.method === 'PUT' && r.path.includes('.part.') && toDrop-- > 0;
      proxy.stallConnections = 2;
      const r = await runCli('ec2-upload-bundle', [
        '-b',
        'faults/ok',
        '-m',
        six.manifest,
        '--retry',
        '--timeout',
        '2',
        '--concurrency',
        '3',
        '--debug',
        ...upFlags(proxy.endpoint),
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(proxy.dropped).toBe(3);
      expect(proxy.stalled).toBe(2);
      expect(r.stderr).toMatch(/DEBUG: PutObject .*: attempt 1 failed .*; retrying in \d+ ms/);
      const names = [path.basename(six.manifest), ...six.parts].sort();
      expect(await gw.listKeys('faults')).toEqual(names.map((n) => `ok/${n}`));
      for (const n of names)
        expect(sha256(await gw.getObject('faults', `ok/${n}`))).toBe(sha256(path.join(six.dir, n)));
    } finally {
      await proxy.close();
    }
  });

  it('a slow link (latency on every packet) still completes', async () => {
    const proxy = new TcpProxy(gw.port);
    await proxy.start();
    try {
      proxy.latencyMs = 100;
      const r = await runCli('ec2-upload-bundle', [
        '-b',
        'faults/slow',
        '-m',
        fixtureManifest,
        ...upFlags(proxy.endpoint),
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect((await gw.listKeys('faults', 'slow/')).length).toBe(3);
    } finally {
      await proxy.close();
    }
  });

  it('with retries exhausted: exit 3, one line naming bucket, key and the failure, and no manifest', async () => {
    const proxy = new TcpProxy(gw.port);
    await proxy.start();
    try {
      proxy.dropRequests = (r) => r.method === 'PUT' && r.path.includes('.part.1');
      const r = await runCli('ec2-upload-bundle', [
        '-b',
        'faults/fail',
        '-m',
        fixtureManifest,
        '--retry',
        ...upFlags(proxy.endpoint),
      ]);
      expect(r.code).toBe(3);
      expect(r.stderr.trim()).toMatch(
        /^ERROR: S3 PutObject failed for bucket faults, key fail\/multipart\.img\.part\.1: no response, connection reset \(ECONNRESET\) \(after 5 attempts\); /,
      );
      expect(proxy.count('PUT', 'fail/multipart.img.part.1')).toBe(5);
      expect(await gw.listKeys('faults', 'fail/')).toEqual(['fail/multipart.img.part.0']);
    } finally {
      await proxy.close();
    }
  });
});

describe('errors', () => {
  it('a wrong secret key: exit 3 with bucket, HTTP status and S3 code; no secret in the output, even with --debug', async () => {
    const wrong = 'Wr0ngSecretKeyThatMustNeverBePrinted';
    const r = await runCli('ec2-upload-bundle', [
      '-b',
      'roundtrip',
      '-m',
      fixtureManifest,
      '--url',
      gw.endpoint,
      '-a',
      gw.accessKey,
      '-s',
      wrong,
      '--debug',
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(
      'ERROR: S3 GetBucketLocation failed for bucket roundtrip: HTTP 403 SignatureDoesNotMatch',
    );
    expect(r.stderr + r.stdout).not.toContain(wrong);
    expect(r.stderr + r.stdout).not.toContain(gw.secretKey);
  });

  it('an unknown bucket: exit 3 naming it, with the 404 and NoSuchBucket', async () => {
    const r = await runCli('ec2-download-bundle', [
      '-b',
      'no-such-bucket',
      '-p',
      'image',
      '-d',
      work.dir,
      ...s3Flags(),
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toMatch(/^ERROR: bucket no-such-bucket does not exist \(HTTP 404 NoSuchBucket\)/);
  });

  it("stock radosgw's zone name (`default`) is where the bucket is, not another region: one warning, uploaded", async () => {
    const r = await runCli('ec2-upload-bundle', [
      '-b',
      'roundtrip/other',
      '-m',
      fixtureManifest,
      '--region',
      'eu-west-1',
      ...upFlags(),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const warning = `WARNING: bucket roundtrip reports location 'default' (not an AWS region name) at ${gw.endpoint}; using it instead of eu-west-1 (--region)`;
    expect(r.stderr.trim()).toBe(warning);
    expect(await gw.listKeys('roundtrip', 'other/')).toEqual(fixtureNames.map((n) => `other/${n}`));
  });

  it('a corrupted part in S3: fetched again, then refused (exit 254); nothing of it left on disk', async () => {
    const up = await runCli('ec2-upload-bundle', ['-b', 'corrupt', '-m', fixtureManifest, ...upFlags()]);
    expect(up.code, up.stderr).toBe(0);
    const good = await gw.getObject('corrupt', 'multipart.img.part.1');
    const bad = Buffer.from(good);
    bad[1000] = bad[1000]! ^ 0xff;
    await gw.putObject('corrupt', 'multipart.img.part.1', bad);

    const down = path.join(work.dir, 'corrupt-down');
    fs.mkdirSync(down);
    const proxy = new TcpProxy(gw.port);
    await proxy.start();
    try {
      const r = await runCli('ec2-download-bundle', [
        '-b',
        'corrupt',
        '-p',
        'multipart.img',
        '-d',
        down,
        ...s3Flags(proxy.endpoint),
      ]);
      expect(r.code).toBe(254);
      expect(r.stderr.trim()).toMatch(
        /^ERROR: part s3:\/\/corrupt\/multipart\.img\.part\.1 does not match the manifest: SHA-1 [0-9a-f]{40}, the manifest says [0-9a-f]{40}; the object in S3 is damaged/,
      );
      expect(proxy.count('GET', '/corrupt/multipart.img.part.1')).toBe(3);
      // The intact part may have landed; the damaged one, the manifest and temporaries did not.
      expect(listDir(down).filter((f) => f !== 'multipart.img.part.0')).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('a missing part file: exit 2 before anything is sent', async () => {
    const dir = path.join(work.dir, 'missing');
    fs.mkdirSync(dir);
    fs.copyFileSync(fixtureManifest, path.join(dir, 'multipart.img.manifest.xml'));
    fs.copyFileSync(path.join(fixtureBundle, 'multipart.img.part.0'), path.join(dir, 'multipart.img.part.0'));
    const r = await runCli('ec2-upload-bundle', [
      '-b',
      'missing',
      '-m',
      path.join(dir, 'multipart.img.manifest.xml'),
      ...upFlags(),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `part file ${path.join(dir, 'multipart.img.part.1')} named by the manifest is missing`,
    );
    const list = await runCli('ec2-download-bundle', ['-b', 'missing', '-d', dir, ...s3Flags()]);
    expect(list.stderr).toContain('bucket missing does not exist');
  });
});

describe('delete-bundle', () => {
  it('-p with more than 1000 matching objects: every listing page, batched deletes, other objects kept', async () => {
    const bucket = 'many';
    const r0 = await runCli('ec2-upload-bundle', ['-b', bucket, '-m', fixtureManifest, ...upFlags()]);
    expect(r0.code, r0.stderr).toBe(0);
    const count = 1105;
    const keys = Array.from({ length: count }, (_, i) => `big.part.${i}`);
    const keep = ['big.partial', 'bigger.part.1', 'big.part.x', 'sub/big.part.1', 'multipart.img.part.0'];
    const all = [...keys, 'big.manifest.xml', ...keep];
    for (let i = 0; i < all.length; i += 50)
      await Promise.all(all.slice(i, i + 50).map((k) => gw.putObject(bucket, k, Buffer.from(k))));

    const r = await runCli('ec2-delete-bundle', ['-b', bucket, '-p', 'big', '-y', ...s3Flags()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('   - big.manifest.xml\n');
    expect(r.stdout).toContain('   - big.part.1104\n');
    expect(r.stdout).toContain('Deleted big.part.1104\n');
    expect(r.stdout.match(/^Deleted /gm)).toHaveLength(count + 1);
    expect(r.stdout.trimEnd().split('\n').pop()).toBe('ec2-delete-bundle complete.');
    const left = await gw.listKeys(bucket);
    expect(left).toEqual([...keep, 'multipart.img.manifest.xml', 'multipart.img.part.1'].sort());
  });

  it('by the manifest in S3 or a local one; asks unless -y/--batch; --clear removes the emptied bucket', async () => {
    const bucket = 'bymanifest';
    const up = await runCli('ec2-upload-bundle', ['-b', `${bucket}/p`, '-m', fixtureManifest, ...upFlags()]);
    expect(up.code, up.stderr).toBe(0);

    // Not a terminal and no -y: nothing is deleted.
    const declined = await runCli('ec2-delete-bundle', [
      '-b',
      `${bucket}/p`,
      '-m',
      'multipart.img.manifest.xml',
      ...s3Flags(),
    ]);
    expect(declined.code).toBe(0);
    expect(declined.stdout).toContain('Nothing deleted.');
    expect(await gw.listKeys(bucket)).toHaveLength(3);

    const byName = await runCli('ec2-delete-bundle', [
      '-b',
      `${bucket}/p`,
      '-m',
      'multipart.img.manifest.xml',
      '--batch',
      ...s3Flags(),
    ]);
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stdout).toContain('Deleted multipart.img.part.1');
    expect(await gw.listKeys(bucket)).toEqual([]);

    await runCli('ec2-upload-bundle', ['-b', bucket, '-m', fixtureManifest, ...upFlags()]);
    const byFile = await runCli('ec2-delete-bundle', [
      '-b',
      bucket,
      '-m',
      fixtureManifest,
      '-y',
      '--clear',
      ...s3Flags(),
    ]);
    expect(byFile.code, byFile.stderr).toBe(0);
    expect(byFile.stdout).toContain(`Attempting to delete bucket ${bucket}...`);
    const gone = await runCli('ec2-download-bundle', ['-b', bucket, '-d', work.dir, ...s3Flags()]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain('NoSuchBucket');
  });

  it('--clear on a bucket that still holds objects: exit 3 with BucketNotEmpty', async () => {
    await gw.putObject('many', 'unrelated', Buffer.from('x'));
    const r = await runCli('ec2-delete-bundle', [
      '-b',
      'many',
      '-p',
      'nothing',
      '-y',
      '--clear',
      ...s3Flags(),
    ]);
    expect(r.stdout).toContain('No files to delete.');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/S3 DeleteBucket failed for bucket many: HTTP 409 BucketNotEmpty/);
  });
});

describe('the Packer command lines, verbatim', () => {
  // Packer runs: ec2-upload-bundle -b {{.BucketName}} -m {{.ManifestPath}} -a {{.AccessKey}}
  //   -s {{.SecretKey}} -d {{.BundleDirectory}} --batch --region {{.Region}} --retry
  // The server is chosen by the environment (AWS_ENDPOINT_URL_S3), and its lack of the
  // aws-exec-read ACL by AMIBUNDLE_S3_ACL, so the command line stays exactly Packer's.
  const serverEnv = (): NodeJS.ProcessEnv => ({
    AWS_ENDPOINT_URL_S3: gw.endpoint,
    AMIBUNDLE_S3_ACL: 'public-read',
  });
  /** No credentials anywhere but where each test puts them. */
  const noAmbientCredentials = (home: string): NodeJS.ProcessEnv => ({
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
    AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
    AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
    AWS_EC2_METADATA_DISABLED: undefined,
    HOME: home,
    AWS_CONFIG_FILE: path.join(home, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'no-credentials'),
  });

  it('with -a and -s', async () => {
    const r = await runCli(
      'ec2-upload-bundle',
      [
        '-b',
        'packer-keys',
        '-m',
        six.manifest,
        '-a',
        gw.accessKey,
        '-s',
        gw.secretKey,
        '-d',
        six.dir,
        '--batch',
        '--region',
        'us-east-1',
        '--retry',
      ],
      { env: serverEnv() },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await gw.listKeys('packer-keys')).toEqual([path.basename(six.manifest), ...six.parts].sort());
  });

  it('twice with --url on stock radosgw: the second identical upload to the bucket the first created passes', async () => {
    const packer = (): Promise<Awaited<ReturnType<typeof runCli>>> =>
      runCli(
        'ec2-upload-bundle',
        [
          '-b',
          'packer-twice',
          '-m',
          six.manifest,
          '-a',
          gw.accessKey,
          '-s',
          gw.secretKey,
          '-d',
          six.dir,
          '--batch',
          '--region',
          'us-east-1',
          '--retry',
          '--url',
          gw.endpoint,
        ],
        { env: { AMIBUNDLE_S3_ACL: 'public-read' } },
      );
    const first = await packer();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('Creating bucket...');
    const second = await packer();
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).not.toContain('Creating bucket...');
    expect(second.stderr.trim().split('\n')).toEqual([
      `WARNING: bucket packer-twice reports location 'default' (not an AWS region name) at ${gw.endpoint}; using it instead of us-east-1 (--region)`,
    ]);
    expect(await gw.listKeys('packer-twice')).toEqual([path.basename(six.manifest), ...six.parts].sort());
  });

  it('without -a/-s: credentials from the environment (the SDK default chain)', async () => {
    const home = path.join(work.dir, 'home-env');
    fs.mkdirSync(home);
    const r = await runCli(
      'ec2-upload-bundle',
      [
        '-b',
        'packer-env',
        '-m',
        fixtureManifest,
        '-d',
        fixtureBundle,
        '--batch',
        '--region',
        'us-east-1',
        '--retry',
      ],
      {
        env: {
          ...noAmbientCredentials(home),
          ...serverEnv(),
          AWS_ACCESS_KEY_ID: gw.accessKey,
          AWS_SECRET_ACCESS_KEY: gw.secretKey,
        },
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await gw.listKeys('packer-env')).toHaveLength(3);
  });

  it('without -a/-s: credentials from the instance (instance profile over IMDSv2)', async () => {
    const home = path.join(work.dir, 'home-imds');
    fs.mkdirSync(home);
    const role = 'packer-role';
    const imds = await startImdsServer('v2-required', {
      'iam/security-credentials/': role,
      [`iam/security-credentials/${role}`]: JSON.stringify({
        Code: 'Success',
        Type: 'AWS-HMAC',
        AccessKeyId: gw.accessKey,
        SecretAccessKey: gw.secretKey,
        Token: 'session-token-from-the-instance',
        Expiration: new Date(Date.now() + 3600_000).toISOString(),
      }),
    });
    try {
      const r = await runCli(
        'ec2-upload-bundle',
        [
          '-b',
          'packer-imds',
          '-m',
          fixtureManifest,
          '-d',
          fixtureBundle,
          '--batch',
          '--region',
          'us-east-1',
          '--retry',
        ],
        {
          env: {
            ...noAmbientCredentials(home),
            ...serverEnv(),
            AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint,
          },
        },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(imds.requests.map((q) => `${q.method} ${q.path}`)).toEqual(
        expect.arrayContaining([
          'PUT /latest/api/token',
          `GET /latest/meta-data/iam/security-credentials/${role}`,
        ]),
      );
      expect(imds.requests.filter((q) => q.method === 'GET').every((q) => q.token !== undefined)).toBe(true);
      expect(await gw.listKeys('packer-imds')).toHaveLength(3);
    } finally {
      await imds.close();
    }
  });

  it('without any credentials: one clear line, exit 1', async () => {
    const home = path.join(work.dir, 'home-none');
    fs.mkdirSync(home);
    const r = await runCli(
      'ec2-upload-bundle',
      [
        '-b',
        'packer-none',
        '-m',
        fixtureManifest,
        '-d',
        fixtureBundle,
        '--batch',
        '--region',
        'us-east-1',
        '--retry',
      ],
      // An IMDS endpoint nobody listens on: fails at once instead of waiting for 169.254.169.254.
      {
        env: {
          ...noAmbientCredentials(home),
          ...serverEnv(),
          AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:1',
        },
      },
    );
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(
      /^ERROR: no AWS credentials found: give -a\/--access-key and -s\/--secret-key/,
    );
  });
});
