// `amibundle from-ebs` against the EBS/EC2 test server: snapshots are made with the real AWS SDK
// (StartSnapshot, PutSnapshotBlock, CompleteSnapshot), read back by the real command, and the
// output compared byte for byte with what was put; holes stay holes; corrupt blocks, throttling,
// 5xx, resets, access denied, pending snapshots and pagination as AWS would present them.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEbsClients, type EbsClients } from '../../src/ebs/clients.js';
import { runCli, type CliResult } from '../support/cli.js';
import { BLOCK_SIZE, startEbsServer, type EbsServer } from '../support/ebs-server/index.js';
import { keysDir, tempDir } from '../support/fixtures.js';
import { expectCheckClean, expectSameAsRaw } from '../disk/qemu.js';

const GIB = 2 ** 30;

let server: EbsServer;
let clients: EbsClients;
let tmp: { dir: string; remove: () => void };

function block(seed: number): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE);
  let x = seed * 2654435761;
  for (let i = 0; i < BLOCK_SIZE; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    b.writeUInt32LE(x, i);
  }
  return b;
}

function sha256(b: Uint8Array): Buffer {
  return crypto.createHash('sha256').update(b).digest();
}

/** A completed snapshot holding `blocks` (index -> data), made through the SDK. */
async function makeSnapshot(
  blocks: ReadonlyMap<number, Buffer>,
  opts: { volumeGiB?: number; parent?: string; complete?: boolean } = {},
): Promise<string> {
  const s = await clients.ebs.send(
    new StartSnapshotCommand({
      VolumeSize: opts.volumeGiB ?? 1,
      ...(opts.parent ? { ParentSnapshotId: opts.parent } : {}),
    }),
  );
  const id = s.SnapshotId!;
  const indices = [...blocks.keys()].sort((a, b) => a - b);
  for (let i = 0; i < indices.length; i += 16)
    await Promise.all(
      indices.slice(i, i + 16).map((index) =>
        clients.ebs.send(
          new PutSnapshotBlockCommand({
            SnapshotId: id,
            BlockIndex: index,
            BlockData: blocks.get(index)!,
            DataLength: BLOCK_SIZE,
            Checksum: sha256(blocks.get(index)!).toString('base64'),
            ChecksumAlgorithm: 'SHA256',
          }),
        ),
      ),
    );
  if (opts.complete === false) return id;
  const agg = crypto.createHash('sha256');
  for (const index of indices) agg.update(sha256(blocks.get(index)!));
  await clients.ebs.send(
    new CompleteSnapshotCommand({
      SnapshotId: id,
      ChangedBlocksCount: indices.length,
      Checksum: agg.digest('base64'),
      ChecksumAlgorithm: 'SHA256',
      ChecksumAggregationMethod: 'LINEAR',
    }),
  );
  return id;
}

function fromEbs(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(
    'amibundle',
    [
      'from-ebs',
      ...args,
      '--endpoint-url',
      server.url,
      '--region',
      server.region,
      ...(args.includes('--attempts') ? [] : ['--attempts', '4']),
    ],
    {
      env: {
        ...server.env(),
        AWS_CONFIG_FILE: path.join(tmp.dir, 'no-config'),
        AWS_SHARED_CREDENTIALS_FILE: path.join(tmp.dir, 'no-credentials'),
        AWS_EC2_METADATA_DISABLED: 'true',
        ...env,
      },
    },
  );
}

function doneEvent(r: CliResult): Record<string, unknown> {
  const line = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((e) => e.type === 'done');
  expect(line, r.stdout + r.stderr).toBeDefined();
  return line!;
}

/** The image `blocks` describe (zeros elsewhere) equals the file, read in 64 MiB steps. */
function expectImage(file: string, volumeGiB: number, blocks: ReadonlyMap<number, Buffer>): void {
  const st = fs.statSync(file);
  expect(st.size).toBe(volumeGiB * GIB);
  const fd = fs.openSync(file, 'r');
  try {
    const step = 64 * 2 ** 20;
    const buf = Buffer.alloc(step);
    const want = Buffer.alloc(step);
    for (let off = 0; off < st.size; off += step) {
      fs.readSync(fd, buf, 0, step, off);
      want.fill(0);
      for (const [index, data] of blocks) {
        const at = index * BLOCK_SIZE - off;
        if (at >= 0 && at < step) data.copy(want, at);
      }
      if (!buf.equals(want)) {
        const first = buf.findIndex((b, i) => b !== want[i]);
        expect.fail(`${file} differs from the snapshot at byte ${off + first}`);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  // Holes kept: the file uses about the data's blocks, not the volume's.
  expect(st.blocks * 512).toBeLessThanOrEqual(blocks.size * BLOCK_SIZE + 1024 * 1024);
}

function clientsFor(s: EbsServer): EbsClients {
  return createEbsClients({
    region: s.region,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    ebsEndpoint: s.url,
    ec2Endpoint: s.url,
    concurrency: 16,
    timeoutMs: 10_000,
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  });
}

/** Runs `fn` against a server of its own (other options), then puts the shared one back. */
async function withServer(
  options: Parameters<typeof startEbsServer>[0],
  fn: (s: EbsServer) => Promise<void>,
): Promise<void> {
  const own = await startEbsServer(options);
  const saved = { server, clients };
  server = own;
  clients = clientsFor(own);
  try {
    await fn(own);
  } finally {
    clients.destroy();
    ({ server, clients } = saved);
    await own.close();
  }
}

function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.startsWith('.'));
}

beforeAll(async () => {
  tmp = tempDir('from-ebs');
  server = await startEbsServer({ completionDelayMs: 0 });
  clients = clientsFor(server);
});

afterAll(async () => {
  clients.destroy();
  await server.close();
  tmp.remove();
});

describe('amibundle from-ebs', () => {
  it('writes the snapshot byte for byte, holes kept, zero blocks as written', async () => {
    const blocks = new Map<number, Buffer>([
      [0, block(1)],
      [1, block(2)],
      [5, Buffer.alloc(BLOCK_SIZE)],
      [700, block(3)],
      [2047, block(4)],
    ]);
    const id = await makeSnapshot(blocks);
    const out = path.join(tmp.dir, 'plain.img');
    const described = server.faults.counters.requests.DescribeSnapshots ?? 0;
    const r = await fromEbs([id, '-o', out, '--json', '--concurrency', '3']);
    expect(r.code, r.stderr).toBe(0);
    // EBS direct lists it, so it is completed: no EC2 call (and no EC2 SDK loaded) was needed.
    expect((server.faults.counters.requests.DescribeSnapshots ?? 0) - described).toBe(0);
    expectImage(out, 1, blocks);
    const done = doneEvent(r);
    expect(done).toMatchObject({
      snapshotId: id,
      image: out,
      blocks: 5,
      dataBytes: 5 * BLOCK_SIZE,
      size: GIB,
    });
    // One GET per listed block, nothing for the holes.
    expect(done.getRequests).toBe(5);
    expect(leftovers(tmp.dir)).toEqual([]);
  });

  it('keeps the connections busy while an earlier block is slow: blocks behind it are fetched ahead', async () => {
    const blocks = new Map<number, Buffer>(Array.from({ length: 24 }, (_, i) => [i, block(100 + i)]));
    const id = await makeSnapshot(blocks);
    const gets = (): number => server.faults.counters.requests.GetSnapshotBlock ?? 0;
    const before = gets();
    // The first block request to arrive is answered only once 8 have arrived (or after 10 s):
    // with 4 in flight, the blocks after it are fetched ahead into the reorder window (2 x 4).
    let arrivedWhileHeld = 0;
    server.faults.holdNext(
      1,
      () => {
        arrivedWhileHeld = gets() - before;
        return arrivedWhileHeld >= 8;
      },
      10_000,
      'GetSnapshotBlock',
    );
    const out = path.join(tmp.dir, 'slow-head.img');
    const r = await fromEbs([id, '-o', out, '--json', '--concurrency', '4']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    // In-order writing used to stall every slot behind the held block: at most 3 + 4 arrived.
    expect(arrivedWhileHeld).toBeGreaterThanOrEqual(8);
    expect(gets() - before).toBe(24);
    expectImage(out, 1, blocks);
  });

  it('reads 16 blocks at once (the default) without a listener-leak warning on stderr', async () => {
    // Every request in flight listens on the run's abort signal: past Node's default of 10
    // listeners, users saw "MaxListenersExceededWarning: Possible EventTarget memory leak".
    const blocks = new Map<number, Buffer>(Array.from({ length: 48 }, (_, i) => [i * 3, block(100 + i)]));
    const id = await makeSnapshot(blocks);
    const out = path.join(tmp.dir, 'wide.img');
    const r = await fromEbs([id, '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expectImage(out, 1, blocks);
    expect(doneEvent(r).getRequests).toBe(48);
    expect(r.stderr).not.toMatch(/MaxListenersExceeded|memory leak/);
    fs.rmSync(out);
  });

  it('reads a child snapshot through to its parent', async () => {
    const parentBlocks = new Map<number, Buffer>([
      [3, block(10)],
      [9, block(11)],
    ]);
    const parent = await makeSnapshot(parentBlocks, { volumeGiB: 1 });
    const childBlocks = new Map<number, Buffer>([
      [9, block(12)],
      [4000, block(13)],
    ]);
    const child = await makeSnapshot(childBlocks, { volumeGiB: 2, parent });
    const out = path.join(tmp.dir, 'child.img');
    const r = await fromEbs([child, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expectImage(
      out,
      2,
      new Map([
        [3, parentBlocks.get(3)!],
        [9, childBlocks.get(9)!],
        [4000, childBlocks.get(4000)!],
      ]),
    );
  });

  it('pages through ListSnapshotBlocks', async () => {
    await withServer({ pageSizeCap: 100 }, async (paged) => {
      const shared = block(20);
      const blocks = new Map<number, Buffer>();
      for (let i = 0; i < 250; i++) blocks.set(i * 7, i % 50 === 0 ? block(100 + i) : shared);
      // Seeded straight into the store: the paging is under test here, not the writes.
      const s = await makeSnapshot(new Map(), { complete: false });
      const stored = paged.state.snapshots.get(s)!;
      for (const [i, d] of blocks) stored.blocks.set(i, { data: d, digest: sha256(d) });
      stored.completion = { at: 0, outcome: 'completed' };
      const out = path.join(tmp.dir, 'paged.img');
      const r = await fromEbs([s, '-o', out, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expectImage(out, 1, blocks);
      expect(doneEvent(r)).toMatchObject({ blocks: 250, pages: 3 });
      // The 3 pages, and the one small page that found the snapshot readable (completed).
      expect(paged.faults.counters.requests.ListSnapshotBlocks).toBe(4);
    });
  });

  it('fetches a corrupted block again, and refuses one that stays corrupt', async () => {
    const blocks = new Map<number, Buffer>([
      [0, block(30)],
      [1, block(31)],
      [2, block(32)],
    ]);
    const id = await makeSnapshot(blocks);
    server.faults.corruptNext(1);
    const once = path.join(tmp.dir, 'once.img');
    const r1 = await fromEbs([id, '-o', once, '--json']);
    expect(r1.code, r1.stderr).toBe(0);
    expectImage(once, 1, blocks);
    expect(doneEvent(r1)).toMatchObject({ checksumRetries: 1, getRequests: 4 });

    // The stored data no longer matches its checksum: every answer is corrupt.
    const stored = server.state.snapshots.get(id)!.blocks.get(1)!;
    const bad = Buffer.from(stored.data);
    bad[1000] = bad[1000]! ^ 1;
    server.state.snapshots.get(id)!.blocks.set(1, { data: bad, digest: stored.digest });
    const out = path.join(tmp.dir, 'corrupt.img');
    const r2 = await fromEbs([id, '-o', out]);
    expect(r2.code).toBe(254);
    expect(r2.stderr).toContain(`corrupt data for snapshot ${id}, block 1`);
    expect(r2.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(fs.existsSync(out)).toBe(false);
    expect(leftovers(tmp.dir)).toEqual([]);
    server.state.snapshots.get(id)!.blocks.set(1, stored);
  });

  it('survives throttling, 5xx and reset connections', async () => {
    const blocks = new Map<number, Buffer>();
    for (let i = 0; i < 40; i++) blocks.set(i * 3, block(40 + i));
    const id = await makeSnapshot(blocks);
    const before = { ...server.faults.counters.throttled };
    server.faults.setThrottle({ blockPerSecond: 5 });
    server.faults.failNext(3, 503, 'GetSnapshotBlock');
    server.faults.failNext(1, 500, 'ListSnapshotBlocks');
    server.faults.resetNext(2, 'GetSnapshotBlock');
    try {
      const out = path.join(tmp.dir, 'throttled.img');
      const r = await fromEbs([id, '-o', out, '--concurrency', '8', '--attempts', '10', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expectImage(out, 1, blocks);
      const throttled =
        (server.faults.counters.throttled.GetSnapshotBlock ?? 0) - (before.GetSnapshotBlock ?? 0);
      expect(throttled).toBeGreaterThan(0);
      // Every retry is one more request; none is lost or doubled in the output.
      expect(doneEvent(r).getRequests).toBe(40 + 3 + 2 + throttled);
    } finally {
      server.faults.clear();
    }
  });

  it('stops at AccessDenied without retrying it', async () => {
    const id = await makeSnapshot(new Map([[0, block(50)]]));
    const before = server.faults.counters.requests.GetSnapshotBlock ?? 0;
    server.faults.deny('GetSnapshotBlock');
    try {
      const out = path.join(tmp.dir, 'denied.img');
      const r = await fromEbs([id, '-o', out]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('AccessDeniedException');
      expect(r.stderr).toContain('ebs:GetSnapshotBlock');
      expect((server.faults.counters.requests.GetSnapshotBlock ?? 0) - before).toBe(1);
      expect(fs.existsSync(out)).toBe(false);
    } finally {
      server.faults.clear();
    }
  });

  it('refuses a pending snapshot with --no-wait, and waits for it otherwise', async () => {
    const blocks = new Map([[7, block(60)]]);
    const id = await makeSnapshot(blocks, { complete: false });
    const out = path.join(tmp.dir, 'pending.img');
    const refused = await fromEbs([id, '-o', out, '--no-wait']);
    expect(refused.code).toBe(254);
    expect(refused.stderr).toContain(`snapshot ${id} is still pending`);
    expect(fs.existsSync(out)).toBe(false);

    // Waiting: the snapshot completes once from-ebs has seen it pending (twice).
    const described = server.faults.counters.requests.DescribeSnapshots ?? 0;
    const lists = server.faults.counters.requests.ListSnapshotBlocks ?? 0;
    const run = fromEbs([id, '-o', out]);
    while ((server.faults.counters.requests.DescribeSnapshots ?? 0) < described + 2)
      await new Promise((r) => setTimeout(r, 50));
    // Only the first probe, which EBS direct refused as the snapshot is pending; no block listed.
    expect(server.faults.counters.requests.ListSnapshotBlocks ?? 0).toBe(lists + 1);
    const agg = crypto
      .createHash('sha256')
      .update(sha256(blocks.get(7)!))
      .digest('base64');
    await clients.ebs.send(
      new CompleteSnapshotCommand({
        SnapshotId: id,
        ChangedBlocksCount: 1,
        Checksum: agg,
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    );
    const waited = await run;
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stdout).toContain('waiting until it is completed');
    expectImage(out, 1, blocks);
  });

  it('writes qcow2, VMDK and VHD that qemu-img reads as the raw image', async () => {
    const blocks = new Map<number, Buffer>([
      [0, block(70)],
      [129, block(71)],
      [1999, block(72)],
    ]);
    const id = await makeSnapshot(blocks);
    const raw = path.join(tmp.dir, 'fmt.img');
    expect((await fromEbs([id, '-o', raw])).code).toBe(0);
    for (const [format, file] of [
      ['qcow2', 'fmt.qcow2'],
      ['vmdk', 'fmt.vmdk'],
      ['vhd', 'fmt.vhd'],
    ] as const) {
      const out = path.join(tmp.dir, file);
      const r = await fromEbs([id, '-o', out, '--format', format]);
      expect(r.code, r.stderr).toBe(0);
      expectCheckClean(format, out);
      expectSameAsRaw(format, raw, out);
    }
    const wrongName = await fromEbs([id, '-o', path.join(tmp.dir, 'fmt.img'), '--format', 'qcow2']);
    expect(wrongName.code).toBe(1);
    expect(wrongName.stderr).toContain('fmt.img.qcow2');
  });

  it('makes a bundle of the snapshot that unbundles to the same bytes', async () => {
    const blocks = new Map<number, Buffer>([
      [2, block(80)],
      [1500, block(81)],
    ]);
    const id = await makeSnapshot(blocks);
    const dest = path.join(tmp.dir, 'bundle');
    fs.mkdirSync(dest);
    const r = await fromEbs([
      id,
      '--bundle',
      '-k',
      path.join(keysDir, 'user-key.pem'),
      '-c',
      path.join(keysDir, 'user-cert.pem'),
      '-u',
      '123456789012',
      '--ec2cert',
      path.join(keysDir, 'ec2-cert.pem'),
      '-r',
      'x86_64',
      '-d',
      dest,
      '-p',
      'from-snap',
      '--fast',
      '--batch',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(dest).filter((f) => f.startsWith('.'))).toEqual([]);
    const restored = path.join(tmp.dir, 'restored');
    fs.mkdirSync(restored);
    const u = await runCli('amibundle', [
      'unbundle',
      '-m',
      path.join(dest, 'from-snap.manifest.xml'),
      '-k',
      path.join(keysDir, 'user-key.pem'),
      '-s',
      dest,
      '-d',
      restored,
    ]);
    expect(u.code, u.stderr).toBe(0);
    expectImage(path.join(restored, 'from-snap'), 1, blocks);
  });

  it('refuses bad command lines and unknown snapshots with one clear line', async () => {
    const noId = await fromEbs(['-o', path.join(tmp.dir, 'x.img')]);
    expect(noId.code).toBe(1);
    expect(noId.stderr).toContain('missing SNAPSHOT');
    const badId = await fromEbs(['vol-123', '-o', path.join(tmp.dir, 'x.img')]);
    expect(badId.code).toBe(1);
    expect(badId.stderr).toContain("SNAPSHOT 'vol-123' is not a snapshot id");
    const neither = await fromEbs(['snap-0123456789abcdef0']);
    expect(neither.code).toBe(1);
    expect(neither.stderr).toContain('--output');
    const bundleNoKey = await fromEbs(['snap-0123456789abcdef0', '--bundle', '-d', tmp.dir]);
    expect(bundleNoKey.code).toBe(1);
    const unknown = await fromEbs(['snap-0123456789abcdef0', '-o', path.join(tmp.dir, 'x.img')]);
    expect(unknown.code).toBe(254);
    expect(unknown.stderr).toContain('snapshot snap-0123456789abcdef0 does not exist');
    expect(fs.existsSync(path.join(tmp.dir, 'x.img'))).toBe(false);
  });
});
