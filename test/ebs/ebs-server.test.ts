// The EBS/EC2 test server checked against an independent real client, Debian's awscli: if the
// server only agreed with our own client, a shared misreading of the API would go unseen. Always
// /usr/bin/aws (Debian's package; a pip awscli elsewhere on PATH is not what CI installs).
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOCK_SIZE, startEbsServer, type EbsServer } from '../support/ebs-server/index.js';

const AWS = '/usr/bin/aws';

interface AwsResult {
  code: number;
  stdout: string;
  stderr: string;
}

let server: EbsServer;
let dir: string;

function aws(args: readonly string[], env: Record<string, string> = {}): Promise<AwsResult> {
  return new Promise((resolve) => {
    execFile(
      AWS,
      [
        ...args,
        '--endpoint-url',
        server.url,
        ...(args.includes('--region') ? [] : ['--region', server.region]),
        '--output',
        'json',
      ],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: dir,
          AWS_CONFIG_FILE: path.join(dir, 'no-config'),
          AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-credentials'),
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_PAGER: '',
          AWS_MAX_ATTEMPTS: '1',
          AWS_ACCESS_KEY_ID: server.accessKeyId,
          AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
          ...env,
        },
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function ok<T = Record<string, unknown>>(args: readonly string[]): Promise<T> {
  const r = await aws(args);
  expect(r.code, `aws ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return (r.stdout.trim() ? JSON.parse(r.stdout) : {}) as T;
}

/** The service error code awscli reports ("An error occurred (Code) when calling …"). */
function errorCode(r: AwsResult): string | undefined {
  return /An error occurred \(([^)]+)\)/.exec(r.stderr)?.[1];
}

function blockFile(name: string, fill: (i: number) => number): { file: string; data: Buffer; sum: string } {
  const data = Buffer.alloc(BLOCK_SIZE);
  for (let i = 0; i < BLOCK_SIZE; i++) data[i] = fill(i);
  const file = path.join(dir, name);
  fs.writeFileSync(file, data);
  return { file, data, sum: crypto.createHash('sha256').update(data).digest('base64') };
}

function linear(blocks: readonly Buffer[]): string {
  const h = crypto.createHash('sha256');
  for (const b of blocks) h.update(crypto.createHash('sha256').update(b).digest());
  return h.digest('base64');
}

async function startSnapshot(extra: readonly string[] = []): Promise<string> {
  const r = await ok<{ SnapshotId: string; Status: string }>([
    'ebs',
    'start-snapshot',
    '--volume-size',
    '1',
    ...extra,
  ]);
  expect(r.Status).toBe('pending');
  return r.SnapshotId;
}

function put(
  id: string,
  index: number,
  b: { file: string; sum: string },
  extra: readonly string[] = [],
): Promise<AwsResult> {
  return aws([
    'ebs',
    'put-snapshot-block',
    '--snapshot-id',
    id,
    '--block-index',
    String(index),
    '--block-data',
    b.file,
    '--data-length',
    String(BLOCK_SIZE),
    '--checksum',
    b.sum,
    '--checksum-algorithm',
    'SHA256',
    ...extra,
  ]);
}

function complete(id: string, count: number, checksum: string): Promise<AwsResult> {
  return aws([
    'ebs',
    'complete-snapshot',
    '--snapshot-id',
    id,
    '--changed-blocks-count',
    String(count),
    '--checksum',
    checksum,
    '--checksum-algorithm',
    'SHA256',
    '--checksum-aggregation-method',
    'LINEAR',
  ]);
}

async function describeState(
  id: string,
): Promise<{ State: string; Progress: string; StateMessage?: string }> {
  const r = await ok<{ Snapshots: { State: string; Progress: string; StateMessage?: string }[] }>([
    'ec2',
    'describe-snapshots',
    '--snapshot-ids',
    id,
  ]);
  expect(r.Snapshots).toHaveLength(1);
  return r.Snapshots[0]!;
}

async function waitCompleted(id: string): Promise<void> {
  for (;;) {
    const s = await describeState(id);
    if (s.State !== 'pending') {
      expect(s.State).toBe('completed');
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebs-awscli-'));
  server = await startEbsServer({ completionDelayMs: 300 });
});

afterAll(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the EBS test server, driven by Debian awscli', () => {
  it('is Debian awscli v2', async () => {
    const r = await new Promise<string>((resolve) =>
      execFile(AWS, ['--version'], (_e, stdout, stderr) => resolve(stdout + stderr)),
    );
    expect(r).toMatch(/^aws-cli\/2\./);
  });

  it('writes, completes and reads back a snapshot; a child reads through to its parent', async () => {
    const a = blockFile('a', (i) => (i * 7) & 0xff);
    const b = blockFile('b', (i) => (i >> 3) & 0xff);
    const id = await startSnapshot([
      '--description',
      'awscli round trip',
      '--tags',
      'Key=purpose,Value=test',
    ]);
    expect((await put(id, 0, a)).code).toBe(0);
    expect((await put(id, 2047, b)).code).toBe(0);

    // A pending snapshot cannot be read.
    const pendingList = await aws(['ebs', 'list-snapshot-blocks', '--snapshot-id', id]);
    expect(pendingList.code).not.toBe(0);
    expect(errorCode(pendingList)).toBe('ValidationException');

    const done = await complete(id, 2, linear([a.data, b.data]));
    expect(done.code, done.stderr).toBe(0);
    expect((JSON.parse(done.stdout) as { Status: string }).Status).toBe('pending');
    await waitCompleted(id);
    const described = await ok<{
      Snapshots: { Description: string; Tags: { Key: string; Value: string }[]; Progress: string }[];
    }>(['ec2', 'describe-snapshots', '--snapshot-ids', id]);
    expect(described.Snapshots[0]!.Description).toBe('awscli round trip');
    expect(described.Snapshots[0]!.Tags).toEqual([{ Key: 'purpose', Value: 'test' }]);
    expect(described.Snapshots[0]!.Progress).toBe('100%');

    const listed = await ok<{
      Blocks: { BlockIndex: number; BlockToken: string }[];
      VolumeSize: number;
      BlockSize: number;
    }>(['ebs', 'list-snapshot-blocks', '--snapshot-id', id]);
    expect(listed.Blocks.map((x) => x.BlockIndex)).toEqual([0, 2047]);
    expect(listed.VolumeSize).toBe(1);
    expect(listed.BlockSize).toBe(BLOCK_SIZE);
    const out = path.join(dir, 'got');
    const got = await ok<{ Checksum: string; ChecksumAlgorithm: string; DataLength: number | string }>([
      'ebs',
      'get-snapshot-block',
      '--snapshot-id',
      id,
      '--block-index',
      '2047',
      '--block-token',
      listed.Blocks[1]!.BlockToken,
      out,
    ]);
    expect(fs.readFileSync(out).equals(b.data)).toBe(true);
    expect(got.Checksum).toBe(b.sum);
    expect(got.ChecksumAlgorithm).toBe('SHA256');
    expect(Number(got.DataLength)).toBe(BLOCK_SIZE);

    // A token for one block does not read another.
    const wrongToken = await aws([
      'ebs',
      'get-snapshot-block',
      '--snapshot-id',
      id,
      '--block-index',
      '0',
      '--block-token',
      listed.Blocks[1]!.BlockToken,
      out,
    ]);
    expect(errorCode(wrongToken)).toBe('ValidationException');

    // Incremental: the child overwrites block 2047 only; block 0 comes from the parent.
    const c = blockFile('c', (i) => (i * 13 + 1) & 0xff);
    const child = await startSnapshot(['--parent-snapshot-id', id]);
    expect((await put(child, 2047, c)).code).toBe(0);
    expect((await complete(child, 1, linear([c.data]))).code).toBe(0);
    await waitCompleted(child);
    const changed = await ok<{
      ChangedBlocks: { BlockIndex: number; FirstBlockToken?: string; SecondBlockToken?: string }[];
    }>(['ebs', 'list-changed-blocks', '--first-snapshot-id', id, '--second-snapshot-id', child]);
    expect(changed.ChangedBlocks.map((x) => x.BlockIndex)).toEqual([2047]);
    expect(changed.ChangedBlocks[0]!.FirstBlockToken).toBeDefined();
    expect(changed.ChangedBlocks[0]!.SecondBlockToken).toBeDefined();
    const childList = await ok<{ Blocks: { BlockIndex: number; BlockToken: string }[] }>([
      'ebs',
      'list-snapshot-blocks',
      '--snapshot-id',
      child,
    ]);
    expect(childList.Blocks.map((x) => x.BlockIndex)).toEqual([0, 2047]);
    await ok([
      'ebs',
      'get-snapshot-block',
      '--snapshot-id',
      child,
      '--block-index',
      '0',
      '--block-token',
      childList.Blocks[0]!.BlockToken,
      out,
    ]);
    expect(fs.readFileSync(out).equals(a.data)).toBe(true);
    await ok([
      'ebs',
      'get-snapshot-block',
      '--snapshot-id',
      child,
      '--block-index',
      '2047',
      '--block-token',
      childList.Blocks[1]!.BlockToken,
      out,
    ]);
    expect(fs.readFileSync(out).equals(c.data)).toBe(true);
  });

  it('pages ListSnapshotBlocks with NextToken and MaxResults', async () => {
    const a = blockFile('p', (i) => (i * 3) & 0xff);
    const id = await startSnapshot();
    // 130 blocks written through awscli would take minutes of its start-up time; one goes through
    // it, the rest are put straight into the server's store (the paging is what is under test).
    const indices = Array.from({ length: 130 }, (_, i) => i * 15);
    expect((await put(id, indices[0]!, a)).code).toBe(0);
    const stored = server.state.snapshots.get(id)!;
    for (const i of indices.slice(1)) stored.blocks.set(i, stored.blocks.get(indices[0]!)!);
    expect((await complete(id, indices.length, linear(indices.map(() => a.data)))).code).toBe(0);
    await waitCompleted(id);
    const seen: number[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page: { Blocks: { BlockIndex: number }[]; NextToken?: string } = await ok([
        'ebs',
        'list-snapshot-blocks',
        '--snapshot-id',
        id,
        '--max-results',
        '100',
        ...(token ? ['--next-token', token] : []),
      ]);
      expect(page.Blocks.length).toBeLessThanOrEqual(100);
      seen.push(...page.Blocks.map((x) => x.BlockIndex));
      token = page.NextToken;
      pages++;
    } while (token);
    expect(pages).toBe(2);
    expect(seen).toEqual(indices);
    const bad = await aws([
      'ebs',
      'list-snapshot-blocks',
      '--snapshot-id',
      id,
      '--next-token',
      'Zm9vOmJhcg==',
    ]);
    expect(errorCode(bad)).toBe('ValidationException');
  });

  it('registers an AMI from a completed snapshot and describes it', async () => {
    const a = blockFile('r', (i) => i & 0xff);
    const id = await startSnapshot();
    expect((await put(id, 1, a)).code).toBe(0);

    // A pending snapshot is no AMI root.
    const early = await aws([
      'ec2',
      'register-image',
      '--name',
      'from-pending',
      '--root-device-name',
      '/dev/xvda',
      '--block-device-mappings',
      `DeviceName=/dev/xvda,Ebs={SnapshotId=${id}}`,
    ]);
    expect(errorCode(early)).toBe('IncorrectState');

    expect((await complete(id, 1, linear([a.data]))).code).toBe(0);
    await waitCompleted(id);
    const reg = await ok<{ ImageId: string }>([
      'ec2',
      'register-image',
      '--name',
      'amibundle-test (1)',
      '--description',
      'registered by awscli',
      '--architecture',
      'x86_64',
      '--virtualization-type',
      'hvm',
      '--boot-mode',
      'legacy-bios',
      '--ena-support',
      '--sriov-net-support',
      'simple',
      '--imds-support',
      'v2.0',
      '--root-device-name',
      '/dev/xvda',
      '--block-device-mappings',
      `DeviceName=/dev/xvda,Ebs={SnapshotId=${id},VolumeType=gp3,DeleteOnTermination=true}`,
    ]);
    expect(reg.ImageId).toMatch(/^ami-[0-9a-f]+$/);
    await ok([
      'ec2',
      'enable-image-deprecation',
      '--image-id',
      reg.ImageId,
      '--deprecate-at',
      '2030-01-01T00:00:20Z',
    ]);
    const images = await ok<{ Images: Record<string, unknown>[] }>([
      'ec2',
      'describe-images',
      '--image-ids',
      reg.ImageId,
    ]);
    expect(images.Images).toHaveLength(1);
    expect(images.Images[0]).toMatchObject({
      ImageId: reg.ImageId,
      Name: 'amibundle-test (1)',
      Description: 'registered by awscli',
      Architecture: 'x86_64',
      VirtualizationType: 'hvm',
      BootMode: 'legacy-bios',
      EnaSupport: true,
      SriovNetSupport: 'simple',
      ImdsSupport: 'v2.0',
      RootDeviceType: 'ebs',
      RootDeviceName: '/dev/xvda',
      State: 'available',
      DeprecationTime: '2030-01-01T00:00:00.000Z',
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/xvda',
          Ebs: {
            SnapshotId: id,
            VolumeSize: 1,
            VolumeType: 'gp3',
            DeleteOnTermination: true,
            Encrypted: false,
          },
        },
      ],
    });
    const dup = await aws([
      'ec2',
      'register-image',
      '--name',
      'amibundle-test (1)',
      '--root-device-name',
      '/dev/xvda',
      '--block-device-mappings',
      `DeviceName=/dev/xvda,Ebs={SnapshotId=${id}}`,
    ]);
    expect(errorCode(dup)).toBe('InvalidAMIName.Duplicate');
    const missing = await aws(['ec2', 'describe-images', '--image-ids', 'ami-0123456789abcdef0']);
    expect(errorCode(missing)).toBe('InvalidAMIID.NotFound');
  });

  it('refuses what AWS refuses: checksum, size, index, signature, state, encryption', async () => {
    const a = blockFile('n', (i) => (i * 5) & 0xff);
    const id = await startSnapshot();

    const small = path.join(dir, 'small');
    fs.writeFileSync(small, a.data.subarray(0, 4096));
    const otherSum = crypto.createHash('sha256').update('other').digest('base64');
    // Independent refusals run side by side (each awscli start costs seconds).
    const [wrongSum, wrongLength, truncated, outOfRange, badEbsSig, badEc2Sig, unknownKey, otherRegion] =
      await Promise.all([
        put(id, 0, { file: a.file, sum: otherSum }),
        aws([
          'ebs',
          'put-snapshot-block',
          '--snapshot-id',
          id,
          '--block-index',
          '0',
          '--block-data',
          small,
          '--data-length',
          '4096',
          '--checksum',
          crypto.createHash('sha256').update(a.data.subarray(0, 4096)).digest('base64'),
          '--checksum-algorithm',
          'SHA256',
        ]),
        // Declared 512 KiB, sent 4 KiB.
        put(id, 0, { file: small, sum: a.sum }),
        put(id, 2048, a),
        aws(['ebs', 'list-snapshot-blocks', '--snapshot-id', id], { AWS_SECRET_ACCESS_KEY: 'wrong-secret' }),
        aws(['ec2', 'describe-snapshots', '--snapshot-ids', id], { AWS_SECRET_ACCESS_KEY: 'wrong-secret' }),
        aws(['ebs', 'list-snapshot-blocks', '--snapshot-id', id], {
          AWS_ACCESS_KEY_ID: 'AKIDUNKNOWN000000000',
        }),
        aws(['ec2', 'describe-snapshots', '--snapshot-ids', id, '--region', 'eu-west-1']),
      ]);
    expect(wrongSum.code).toBe(254);
    expect(errorCode(wrongSum)).toBe('ValidationException');
    expect(wrongSum.stderr).toContain('checksum');
    expect(errorCode(wrongLength)).toBe('ValidationException');
    expect(wrongLength.stderr).toContain('DataLength');
    // The one validation error AWS lists as retryable.
    expect(errorCode(truncated)).toBe('ValidationException');
    expect(truncated.stderr).toContain('Failed to read block data');
    expect(errorCode(outOfRange)).toBe('ValidationException');
    expect(outOfRange.stderr).toContain('2048');
    expect(badEbsSig.code).toBe(254);
    expect(errorCode(badEbsSig)).toBe('InvalidSignatureException');
    expect(errorCode(badEc2Sig)).toBe('SignatureDoesNotMatch');
    expect(errorCode(unknownKey)).toBe('UnrecognizedClientException');
    expect(errorCode(otherRegion)).toBe('SignatureDoesNotMatch');

    // Nothing was stored by the refused writes; a wrong count turns the snapshot to error.
    expect(server.state.snapshots.get(id)!.blocks.size).toBe(0);
    expect((await put(id, 0, a)).code).toBe(0);
    expect((await complete(id, 2, linear([a.data]))).code).toBe(0);
    let s = await describeState(id);
    while (s.State === 'pending') s = await describeState(id);
    expect(s.State).toBe('error');
    const afterwards = await put(id, 1, a);
    expect(errorCode(afterwards)).toBe('ValidationException');

    // A wrong aggregate checksum, too.
    const id2 = await startSnapshot();
    expect((await put(id2, 0, a)).code).toBe(0);
    expect((await complete(id2, 1, linear([a.data, a.data]))).code).toBe(0);
    s = await describeState(id2);
    while (s.State === 'pending') s = await describeState(id2);
    expect(s.State).toBe('error');

    const unknown = await aws(['ec2', 'describe-snapshots', '--snapshot-ids', 'snap-0123456789abcdef0']);
    expect(errorCode(unknown)).toBe('InvalidSnapshot.NotFound');
    const unknownEbs = await aws(['ebs', 'list-snapshot-blocks', '--snapshot-id', 'snap-0123456789abcdef0']);
    expect(errorCode(unknownEbs)).toBe('ResourceNotFoundException');

    // An unencrypted parent cannot have an encrypted child.
    const parent = await startSnapshot();
    expect((await complete(parent, 0, linear([]))).code).toBe(0);
    await waitCompleted(parent);
    const encChild = await aws([
      'ebs',
      'start-snapshot',
      '--volume-size',
      '1',
      '--parent-snapshot-id',
      parent,
      '--encrypted',
    ]);
    expect(errorCode(encChild)).toBe('ValidationException');
    const plainChild = await aws([
      'ebs',
      'start-snapshot',
      '--volume-size',
      '1',
      '--parent-snapshot-id',
      parent,
    ]);
    expect(plainChild.code, plainChild.stderr).toBe(0);
    const big = await ok<{ SnapshotId: string }>(['ebs', 'start-snapshot', '--volume-size', '2']);
    expect((await complete(big.SnapshotId, 0, linear([]))).code).toBe(0);
    await waitCompleted(big.SnapshotId);
    const smaller = await aws([
      'ebs',
      'start-snapshot',
      '--volume-size',
      '1',
      '--parent-snapshot-id',
      big.SnapshotId,
    ]);
    expect(errorCode(smaller)).toBe('ValidationException');
  });

  it('keeps a new snapshot unknown for the "does not exist" window', async () => {
    const s = await startEbsServer({ notFoundWindowMs: 60_000 });
    const saved = server;
    server = s;
    try {
      const a = blockFile('w', (i) => (i * 11) & 0xff);
      const id = await startSnapshot();
      const early = await put(id, 0, a);
      expect(errorCode(early)).toBe('ResourceNotFoundException');
      const described = await aws(['ec2', 'describe-snapshots', '--snapshot-ids', id]);
      expect(errorCode(described)).toBe('InvalidSnapshot.NotFound');
      // The same ClientToken again returns the same snapshot (idempotent), even inside the window.
      const t1 = await ok<{ SnapshotId: string }>([
        'ebs',
        'start-snapshot',
        '--volume-size',
        '2',
        '--client-token',
        'tok-1',
      ]);
      const t2 = await ok<{ SnapshotId: string }>([
        'ebs',
        'start-snapshot',
        '--volume-size',
        '2',
        '--client-token',
        'tok-1',
      ]);
      expect(t2.SnapshotId).toBe(t1.SnapshotId);
      const conflict = await aws(['ebs', 'start-snapshot', '--volume-size', '3', '--client-token', 'tok-1']);
      expect(errorCode(conflict)).toBe('ConflictException');
    } finally {
      server = saved;
      await s.close();
    }
  });

  it('throttles, fails and denies on request, and counts what it saw', async () => {
    const a = blockFile('t', (i) => (i * 17) & 0xff);
    const id = await startSnapshot();
    const before = server.faults.counters.requests.PutSnapshotBlock ?? 0;
    const bytesBefore = server.faults.counters.bytesPerAction.PutSnapshotBlock ?? 0;

    // One request, then one per 100 s: far slower than awscli starts up.
    server.faults.setThrottle({ blockPerSecond: 0.01, ebsPerSecond: 0.01, ec2PerSecond: 0.01 });
    const first = await put(id, 0, a);
    expect(first.code).toBe(0);
    const second = await put(id, 1, a);
    expect(errorCode(second)).toBe('RequestThrottledException');
    await aws(['ebs', 'list-snapshot-blocks', '--snapshot-id', id]);
    const listThrottled = await aws(['ebs', 'list-snapshot-blocks', '--snapshot-id', id]);
    expect(errorCode(listThrottled)).toBe('ThrottlingException');
    await aws(['ec2', 'describe-snapshots', '--snapshot-ids', id]);
    const ec2Throttled = await aws(['ec2', 'describe-snapshots', '--snapshot-ids', id]);
    expect(errorCode(ec2Throttled)).toBe('RequestLimitExceeded');
    server.faults.clear();

    server.faults.failNext(1, 500, 'PutSnapshotBlock');
    expect(errorCode(await put(id, 1, a))).toBe('InternalServerException');
    server.faults.failNext(1, 503);
    expect(errorCode(await aws(['ec2', 'describe-snapshots', '--snapshot-ids', id]))).toBe('Unavailable');
    // awscli's own retries get through a single 500.
    server.faults.failNext(1, 500, 'PutSnapshotBlock');
    expect((await put(id, 1, a, [])).code).not.toBe(0);
    server.faults.failNext(1, 500, 'PutSnapshotBlock');
    const retried = await aws(
      [
        'ebs',
        'put-snapshot-block',
        '--snapshot-id',
        id,
        '--block-index',
        '1',
        '--block-data',
        a.file,
        '--data-length',
        String(BLOCK_SIZE),
        '--checksum',
        a.sum,
        '--checksum-algorithm',
        'SHA256',
      ],
      { AWS_MAX_ATTEMPTS: '3' },
    );
    expect(retried.code, retried.stderr).toBe(0);

    server.faults.resetNext(1, 'ListSnapshotBlocks');
    const reset = await aws(['ebs', 'list-snapshot-blocks', '--snapshot-id', id]);
    expect(reset.code).toBe(255);
    expect(errorCode(reset)).toBeUndefined();

    server.faults.stallNext(1, 2000, 'DescribeSnapshots');
    const stalled = await aws(['ec2', 'describe-snapshots', '--snapshot-ids', id, '--cli-read-timeout', '1']);
    expect(stalled.code).toBe(255);

    server.faults.deny('CompleteSnapshot');
    const denied = await complete(id, 2, linear([a.data, a.data]));
    expect(errorCode(denied)).toBe('AccessDeniedException');
    server.faults.allow('CompleteSnapshot');
    server.faults.deny('RegisterImage');
    const deniedEc2 = await aws([
      'ec2',
      'register-image',
      '--name',
      'denied',
      '--root-device-name',
      '/dev/xvda',
      '--block-device-mappings',
      `DeviceName=/dev/xvda,Ebs={SnapshotId=${id}}`,
    ]);
    expect(errorCode(deniedEc2)).toBe('UnauthorizedOperation');
    server.faults.clear();

    const counters = server.faults.counters;
    // first, throttled second, 500, 500 (one attempt), 500 + retry success
    expect((counters.requests.PutSnapshotBlock ?? 0) - before).toBe(6);
    expect((counters.bytesPerAction.PutSnapshotBlock ?? 0) - bytesBefore).toBe(6 * BLOCK_SIZE);
    expect(counters.throttled.PutSnapshotBlock).toBeGreaterThanOrEqual(1);
  });
});
