// What upload-bundle puts on the wire, seen by a capture server on 127.0.0.1 (which checks no
// signatures, so it stands in for S3 only where the bytes sent are the question): the default
// aws-exec-read ACL that EC2 needs (radosgw refuses it), Content-MD5, the manifest last, the
// session token, the signing region, bucket creation, and the checks made before any upload.
import crypto from 'node:crypto';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { startCaptureServer, type CaptureServer, type CapturedRequest } from '../support/capture-server.js';
import { bundledCases } from '../support/fixtures.js';

const fixture = bundledCases().find((c) => c.case === 'c-multipart')!;
const manifest = path.join(fixture.dir, fixture.expected!.manifest_file);
const ACCESS = 'AKIAWIRETEST';
const SECRET = 'wire/secret+key/never-on-the-wire';

let server: CaptureServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const objectPuts = (reqs: readonly CapturedRequest[]): CapturedRequest[] =>
  reqs.filter(
    (r) => r.method === 'PUT' && new URL(r.url, 'http://x').pathname.split('/').filter(Boolean).length > 1,
  );

/** The request's path without query or trailing slash: `/bucket` or `/bucket/key`. */
const pathOf = (r: CapturedRequest): string => new URL(r.url, 'http://x').pathname.replace(/\/$/, '');

/** ec2-upload-bundle of the fixture's manifest to `bucket` on the capture server, with static keys. */
const upload = (bucket: string, ...extra: string[]): ReturnType<typeof runCli> =>
  runCli('ec2-upload-bundle', [
    '-b',
    bucket,
    '-m',
    manifest,
    '--url',
    server!.endpoint,
    '-a',
    ACCESS,
    '-s',
    SECRET,
    ...extra,
  ]);

/** The region in a SigV4 Authorization header's credential scope. */
const signingRegion = (r: CapturedRequest): string | undefined =>
  /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\/aws4_request/.exec(String(r.headers.authorization))?.[1];

describe('upload-bundle on the wire', () => {
  it('by default every object carries x-amz-acl: aws-exec-read and a correct Content-MD5; the manifest is last', async () => {
    server = await startCaptureServer({ bucketLocation: '' });
    const r = await upload('wire/pfx');
    expect(r.code, r.stderr).toBe(0);
    const puts = objectPuts(server.requests);
    expect(puts.map(pathOf).sort()).toEqual([
      '/wire/pfx/multipart.img.manifest.xml',
      '/wire/pfx/multipart.img.part.0',
      '/wire/pfx/multipart.img.part.1',
    ]);
    expect(pathOf(server.requests.at(-1)!)).toBe('/wire/pfx/multipart.img.manifest.xml');
    for (const p of puts) {
      expect(p.headers['x-amz-acl']).toBe('aws-exec-read');
      expect(p.headers['content-md5']).toBe(crypto.createHash('md5').update(p.body).digest('base64'));
      // The signed Content-MD5 protects the body; no second hash of it for the signature.
      expect(p.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(String(p.headers.authorization)).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIAWIRETEST\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=[^,]*content-md5[^,]*x-amz-acl/,
      );
    }
    for (const q of server.requests) expect(JSON.stringify(q.headers)).not.toContain(SECRET);
  });

  it("Packer's command line, verbatim, sends aws-exec-read (endpoint from AWS_ENDPOINT_URL_S3)", async () => {
    server = await startCaptureServer({ bucketLocation: '' });
    const dir = path.dirname(manifest);
    const r = await runCli(
      'ec2-upload-bundle',
      [
        '-b',
        'packer',
        '-m',
        manifest,
        '-a',
        ACCESS,
        '-s',
        SECRET,
        '-d',
        dir,
        '--batch',
        '--region',
        'us-east-1',
        '--retry',
      ],
      { env: { AWS_ENDPOINT_URL_S3: server.endpoint, AMIBUNDLE_S3_ACL: undefined } },
    );
    expect(r.code, r.stderr).toBe(0);
    const puts = objectPuts(server.requests);
    expect(puts).toHaveLength(3);
    for (const p of puts) expect(p.headers['x-amz-acl']).toBe('aws-exec-read');
  });

  it('-t sends the session token, signed, on every request; --acl private sends no ACL', async () => {
    server = await startCaptureServer({ bucketLocation: '' });
    const r = await upload('tok', '-t', 'the-session-token', '--acl', 'private');
    expect(r.code, r.stderr).toBe(0);
    for (const q of server.requests) {
      expect(q.headers['x-amz-security-token']).toBe('the-session-token');
      expect(String(q.headers.authorization)).toMatch(/SignedHeaders=[^,]*x-amz-security-token/);
    }
    for (const p of objectPuts(server.requests)) expect(p.headers['x-amz-acl']).toBeUndefined();
  });

  it('a missing bucket is created in the requested region with ACLs enabled, then used in that region', async () => {
    server = await startCaptureServer({ bucketLocation: undefined });
    const r = await upload('newbucket', '--region', 'eu-west-1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Creating bucket...');
    const create = server.requests.find((q) => q.method === 'PUT' && pathOf(q) === '/newbucket')!;
    expect(create.headers['x-amz-object-ownership']).toBe('ObjectWriter');
    expect(create.body.toString()).toMatch(
      /<CreateBucketConfiguration[^>]*><LocationConstraint>eu-west-1<\/LocationConstraint><\/CreateBucketConfiguration>/,
    );
    for (const q of server.requests) expect(signingRegion(q)).toBe('eu-west-1');
  });

  it('--location EU creates the bucket in eu-west-1', async () => {
    server = await startCaptureServer({ bucketLocation: undefined });
    const r = await upload('eubucket', '--location', 'EU');
    expect(r.code, r.stderr).toBe(0);
    const create = server.requests.find((q) => q.method === 'PUT' && pathOf(q) === '/eubucket')!;
    expect(create.body.toString()).toContain('<LocationConstraint>eu-west-1</LocationConstraint>');
  });

  it('without --region, the region is found from the bucket and used to sign', async () => {
    server = await startCaptureServer({ bucketLocation: 'ap-southeast-2' });
    const r = await upload('far');
    expect(r.code, r.stderr).toBe(0);
    expect(signingRegion(server.requests[0]!)).toBe('us-east-1');
    expect(pathOf(server.requests[0]!)).toBe('/far');
    expect(server.requests[0]!.url).toMatch(/\?location/);
    for (const q of server.requests.slice(1)) expect(signingRegion(q)).toBe('ap-southeast-2');
  });

  it('the legacy location EU is the same region as --region eu-west-1', async () => {
    server = await startCaptureServer({ bucketLocation: 'EU' });
    const r = await upload('legacy', '--region', 'eu-west-1');
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('refused before any upload', () => {
  it('a bucket with ACLs disabled (BucketOwnerEnforced): exit 3, explains aws-exec-read and the fix; no PUT', async () => {
    server = await startCaptureServer({ bucketLocation: '', objectOwnership: 'BucketOwnerEnforced' });
    const r = await upload('enforced/x');
    expect(r.code).toBe(3);
    const line = r.stderr.trim();
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toContain('bucket enforced has ACLs disabled (Object Ownership: BucketOwnerEnforced)');
    expect(line).toContain('aws-exec-read ACL that EC2 needs to read the bundle');
    expect(line).toContain(
      "aws s3api put-bucket-ownership-controls --bucket enforced --ownership-controls 'Rules=[{ObjectOwnership=ObjectWriter}]'",
    );
    expect(server.requests.filter((q) => q.method === 'PUT')).toEqual([]);
  });

  it('--sigv 2 is refused (SigV4 only) without a request', async () => {
    server = await startCaptureServer({ bucketLocation: '' });
    const r = await upload('v2', '--sigv', '2');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      '--sigv 2 is not supported: amibundle signs every request with Signature Version 4',
    );
    expect(server.requests).toEqual([]);
  });

  it('-a without -s is a usage error; so is a bucket argument with an empty component', async () => {
    server = await startCaptureServer({ bucketLocation: '' });
    const noSecret = await runCli('ec2-upload-bundle', [
      '-b',
      'b1x',
      '-m',
      manifest,
      '--url',
      server.endpoint,
      '-a',
      ACCESS,
    ]);
    expect(noSecret.code).toBe(1);
    expect(noSecret.stderr).toContain('missing mandatory parameter: --secret-key');
    const emptyPiece = await upload('b1x//x');
    expect(emptyPiece.code).toBe(1);
    expect(emptyPiece.stderr).toContain("--bucket has invalid value 'b1x//x'");
    expect(server.requests).toEqual([]);
  });
});
