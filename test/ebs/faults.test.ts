// to-ebs under faults, counted on the server: throttling storms, 5xx, resets and stalls are
// retried a bounded number of times; AccessDenied is sent once; a run killed with SIGKILL
// continues with --resume into the same snapshot, which then reads back equal to the image.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { projectRoot, tempDir } from '../support/fixtures.js';
import { startEbsServer, type EbsServer } from '../support/ebs-server/index.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { BLOCK, ebsCli, fileSha256, snapshotDigest, snapshotIdOf, sparseImage } from './ebs-helpers.js';

let server: EbsServer;
const tmp = tempDir('ebs-faults');
let img: string;
const DATA_BLOCKS = Array.from({ length: 40 }, (_, i) => i * 3);

beforeAll(async () => {
  // With the "does not exist yet" window after StartSnapshot: every run here waits it out.
  server = await startEbsServer({ notFoundWindowMs: 300, completionDelayMs: 200 });
  img = path.join(tmp.dir, 'img');
  sparseImage(img, 128 * BLOCK, DATA_BLOCKS);
});

afterAll(async () => {
  await server.close();
  tmp.remove();
});

beforeEach(() => server.faults.clear());

const count = (action: string): number => server.faults.counters.requests[action] ?? 0;

function expectReadBack(id: string): void {
  const back = snapshotDigest(server, id, 128 * BLOCK);
  expect(back.sha256).toBe(fileSha256(img));
}

describe('to-ebs faults', () => {
  it('a throttling storm is ridden out: every throttled request retried, none lost', async () => {
    server.faults.setThrottle({ blockPerSecond: 4 });
    const before = count('PutSnapshotBlock');
    const throttledBefore = server.faults.counters.throttled.PutSnapshotBlock ?? 0;
    const r = await ebsCli(server, ['to-ebs', img, '--concurrency', '16', '--attempts', '12']);
    expect(r.code).toBe(0);
    const throttled = (server.faults.counters.throttled.PutSnapshotBlock ?? 0) - throttledBefore;
    expect(throttled).toBeGreaterThan(0);
    const snap = server.state.snapshots.get(snapshotIdOf(r))!;
    expect(snap.blocks.size).toBe(DATA_BLOCKS.length);
    // Every request was either accepted once per block, throttled, or met the not-yet window.
    expect(count('PutSnapshotBlock') - before).toBeGreaterThanOrEqual(DATA_BLOCKS.length + throttled);
    expectReadBack(snap.id);
  });

  it('5xx answers are retried', async () => {
    server.faults.failNext(5, 500, 'PutSnapshotBlock');
    server.faults.failNext(1, 503, 'CompleteSnapshot');
    const r = await ebsCli(server, ['to-ebs', img]);
    expect(r.code).toBe(0);
    expect(server.faults.counters.faulted.CompleteSnapshot).toBe(1);
    expectReadBack(snapshotIdOf(r));
  });

  it('a block that keeps failing stops after --attempts requests, printing the pending snapshot id', async () => {
    const puts = count('PutSnapshotBlock');
    // Past the "does not exist yet" window first, so only the 503s count.
    server.faults.failNext(1000, 503, 'PutSnapshotBlock');
    const r = await ebsCli(server, ['to-ebs', img, '--attempts', '3', '--concurrency', '1']);
    expect(r.code).toBe(3);
    expect(count('PutSnapshotBlock') - puts).toBe(3);
    expect(r.stderr).toMatch(
      /PutSnapshotBlock failed for snap-[0-9a-f]+|PutSnapshotBlock failed for snapshot snap-/,
    );
    expect(r.stderr).toMatch(/after 3 attempts/);
    expect(r.stderr).toMatch(/Snapshot snap-[0-9a-f]+ is left pending.*--resume/);
    fs.rmSync(`${img}.to-ebs-journal`);
  });

  it('AccessDenied is sent exactly once, never retried', async () => {
    server.faults.deny('PutSnapshotBlock');
    const puts = count('PutSnapshotBlock');
    const r = await ebsCli(server, ['to-ebs', img, '--concurrency', '1']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/AccessDeniedException/);
    expect(count('PutSnapshotBlock') - puts).toBe(1);
    fs.rmSync(`${img}.to-ebs-journal`);
  });

  it('reset and stalled connections (through the TCP proxy) are retried after the stall timeout', async () => {
    const proxy = new TcpProxy(Number(new URL(server.url).port));
    await proxy.start();
    try {
      let resets = 3;
      proxy.dropRequests = (q) => q.method === 'PUT' && resets-- > 0;
      proxy.stallConnections = 1;
      const r = await ebsCli(server, ['to-ebs', img, '--timeout', '2'], { endpoint: proxy.endpoint });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(proxy.dropped).toBe(3);
      expect(proxy.stalled).toBe(1);
      expectReadBack(snapshotIdOf(r));
    } finally {
      await proxy.down();
    }
  });

  it('kill -9 mid-upload, then --resume finishes into the same snapshot', async () => {
    server.faults.setThrottle({ blockPerSecond: 8 });
    const journal = `${img}.to-ebs-journal`;
    const child = spawn(
      process.execPath,
      [
        path.join(projectRoot, 'bin/amibundle.js'),
        'to-ebs',
        img,
        '--concurrency',
        '2',
        '--attempts',
        '20',
        '--endpoint-url',
        server.url,
      ],
      { env: { ...process.env, ...server.env() }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((resolve) => child.on('close', resolve));
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const state = fs.existsSync(journal)
        ? (JSON.parse(fs.readFileSync(journal, 'utf8')) as { blocks: Record<string, string> })
        : undefined;
      if (state && Object.keys(state.blocks).length >= 5) break;
    }
    child.kill('SIGKILL');
    await exited;
    expect((fs.statSync(journal).mode & 0o777).toString(8)).toBe('600');
    const first = /snap-[0-9a-f]+/.exec(out)![0];
    expect(server.state.snapshots.get(first)!.status).toBe('pending');

    server.faults.clear();
    const again = await ebsCli(server, ['to-ebs', img]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/--resume/);

    const r = await ebsCli(server, ['to-ebs', img, '--resume', '--json']);
    expect(r.code).toBe(0);
    const done = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.type === 'done')!;
    expect(done.snapshotId).toBe(first);
    expect(done.blocksResumed as number).toBeGreaterThanOrEqual(5);
    expect((done.blocksSent as number) + (done.blocksResumed as number)).toBe(DATA_BLOCKS.length);
    expect(fs.existsSync(journal)).toBe(false);
    expectReadBack(first);
  });
});
