// `amibundle to-ebs` against the EBS direct test server: the snapshot read back equals the image,
// only the blocks the rules allow are sent (counted on the server), incremental uploads send only
// what differs from the parent, and what must be refused is refused before any request.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fixturesRoot, keysDir, regenerateImage, allCases, tempDir } from '../support/fixtures.js';
import { startEbsServer, type EbsServer } from '../support/ebs-server/index.js';
import {
  BLOCK,
  dataBlocks,
  ebsCli,
  fileSha256,
  snapshotDigest,
  snapshotIdOf,
  sparseImage,
} from './ebs-helpers.js';

let server: EbsServer;
const tmp = tempDir('to-ebs');
let sparse: string;

beforeAll(async () => {
  // No "does not exist yet" window here (faults.test.ts has it): its retried 404s would blur the request counts.
  server = await startEbsServer({ completionDelayMs: 300 });
  sparse = regenerateImage(
    allCases().find((c) => c.case === 'b-sparse')!,
    tmp.dir,
  );
});

afterAll(async () => {
  await server.close();
  tmp.remove();
});

beforeEach(() => {
  server.faults.clear();
});

const puts = (): number => server.faults.counters.requests.PutSnapshotBlock ?? 0;

describe('to-ebs', () => {
  it('uploads a raw sparse image: read back equal, only its data blocks sent, journal gone', async () => {
    const before = puts();
    const r = await ebsCli(server, [
      'to-ebs',
      sparse,
      '--tag',
      'Name=b-sparse',
      '--tag',
      'Owners=ops,dev',
      '--description',
      'fixture',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const id = snapshotIdOf(r);
    const snap = server.state.snapshots.get(id)!;
    expect(snap.status).toBe('completed');
    expect(snap.volumeSize).toBe(1);
    // A tag value holding a comma arrives whole: --tag is repeated, never split on commas.
    expect(snap.tags).toEqual([
      { Key: 'Name', Value: 'b-sparse' },
      { Key: 'Owners', Value: 'ops,dev' },
    ]);
    expect(snap.description).toBe('fixture');
    const expected = dataBlocks(sparse);
    expect(puts() - before).toBe(expected.length);
    expect([...snap.blocks.keys()].sort((a, b) => a - b)).toEqual(expected);
    const back = snapshotDigest(server, id, fs.statSync(sparse).size);
    expect(back.sha256).toBe(fileSha256(sparse));
    expect(back.tailZero).toBe(true);
    expect(fs.existsSync(`${sparse}.to-ebs-journal`)).toBe(false);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(id);
  });

  it('uploads a bundle through the signature-checking restore (ec2-ami-tools 1.5.3 fixture)', async () => {
    const bundle = path.join(fixturesRoot, 'b-sparse/bundle');
    const manifest = fs.readdirSync(bundle).find((f) => f.endsWith('.manifest.xml'))!;
    const cwd = tempDir('to-ebs-bundle');
    try {
      fs.cpSync(bundle, cwd.dir, { recursive: true });
      const r = await ebsCli(server, [
        'to-ebs',
        path.join(cwd.dir, manifest),
        '-k',
        path.join(keysDir, 'user-key.pem'),
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('signature: verified with the key of -k');
      const id = snapshotIdOf(r);
      expect(snapshotDigest(server, id, fs.statSync(sparse).size).sha256).toBe(fileSha256(sparse));
    } finally {
      cwd.remove();
    }
  });

  it('a 10 GiB image holding 100 MiB of data sends only its 200 data blocks', async () => {
    const big = path.join(tmp.dir, 'big.img');
    // 200 blocks of 512 KiB spread over the volume, the first and the last block among them.
    const blocks = [...Array.from({ length: 199 }, (_, i) => i * 102 + (i % 3)), 20479];
    expect(new Set(blocks).size * BLOCK).toBe(100 * 2 ** 20);
    sparseImage(big, 10 * 2 ** 30, blocks);
    const before = puts();
    const described = server.faults.counters.requests.DescribeSnapshots ?? 0;
    // Completed at once: EBS direct reads it straight after CompleteSnapshot, so no EC2 call is needed.
    server.state.timing.completionDelayMs = 0;
    let r;
    try {
      r = await ebsCli(server, ['to-ebs', big, '--json']);
    } finally {
      server.state.timing.completionDelayMs = 300;
    }
    expect(r.code, r.stderr).toBe(0);
    expect(puts() - before).toBe(blocks.length);
    expect((server.faults.counters.requests.DescribeSnapshots ?? 0) - described).toBe(0);
    const done = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.type === 'done')!;
    expect(done).toMatchObject({
      blocksSent: blocks.length,
      zeroBlocksSkipped: 20480 - blocks.length,
      volumeGiB: 10,
    });
    const snap = server.state.snapshots.get(done.snapshotId as string)!;
    expect([...snap.blocks.keys()].sort((x, y) => x - y)).toEqual(blocks);
    const fd = fs.openSync(big, 'r');
    const want = Buffer.alloc(BLOCK);
    for (const i of blocks) {
      fs.readSync(fd, want, 0, BLOCK, i * BLOCK);
      expect(snap.blocks.get(i)!.data.equals(want)).toBe(true);
    }
    fs.closeSync(fd);
    fs.rmSync(big);
  });

  it('encrypted: every block is written, zero blocks included', async () => {
    const img = path.join(tmp.dir, 'enc.img');
    sparseImage(img, 3 * BLOCK, [1]);
    const before = puts();
    const r = await ebsCli(server, [
      'to-ebs',
      img,
      '--encrypted',
      '--kms-key',
      'arn:aws:kms:us-east-1:123456789012:key/test',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const snap = server.state.snapshots.get(snapshotIdOf(r))!;
    expect(snap.encrypted).toBe(true);
    expect(puts() - before).toBe(2048);
    expect(snap.blocks.size).toBe(2048);
  });

  it('incremental: only blocks that differ from the parent are sent, zeros where the parent had data', async () => {
    const a = path.join(tmp.dir, 'a.img');
    sparseImage(a, 64 * BLOCK, [0, 3, 4, 10, 20, 30]);
    const first = await ebsCli(server, ['to-ebs', a]);
    expect(first.code).toBe(0);
    const parent = snapshotIdOf(first);
    // B: block 3 changed, block 10 zeroed (data in the parent), block 40 new, the rest equal.
    const b = path.join(tmp.dir, 'b.img');
    fs.copyFileSync(a, b);
    const fd = fs.openSync(b, 'r+');
    fs.writeSync(fd, Buffer.alloc(BLOCK, 7), 0, BLOCK, 3 * BLOCK);
    fs.writeSync(fd, Buffer.alloc(BLOCK), 0, BLOCK, 10 * BLOCK);
    fs.writeSync(fd, Buffer.alloc(BLOCK, 9), 0, BLOCK, 40 * BLOCK);
    fs.closeSync(fd);
    const before = puts();
    const r = await ebsCli(server, ['to-ebs', b, '--parent-snapshot', parent]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const child = server.state.snapshots.get(snapshotIdOf(r))!;
    expect(child.parentId).toBe(parent);
    expect(puts() - before).toBe(3);
    expect([...child.blocks.keys()].sort((x, y) => x - y)).toEqual([3, 10, 40]);
    expect(snapshotDigest(server, child.id, 64 * BLOCK).sha256).toBe(fileSha256(b));
  });

  it('refuses --parent-snapshot with --encrypted before any request', async () => {
    const before = server.faults.counters.requests.StartSnapshot ?? 0;
    const r = await ebsCli(server, [
      'to-ebs',
      sparse,
      '--parent-snapshot',
      'snap-0123456789abcdef0',
      '--encrypted',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--parent-snapshot may not be given with --encrypted/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(server.faults.counters.requests.StartSnapshot ?? 0).toBe(before);
  });

  it.each(['qcow2', 'vpc'])(
    'reads a %s file by its headers: the guest bytes go up, not the container',
    async (fmt) => {
      const q = path.join(tmp.dir, `disk.${fmt}`);
      execFileSync('qemu-img', ['convert', '-q', '-O', fmt, sparse, q]);
      const r = await ebsCli(server, ['to-ebs', q]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const id = snapshotIdOf(r);
      const size = fs.statSync(sparse).size;
      const back = snapshotDigest(server, id, size);
      expect(back.sha256).toBe(fileSha256(sparse));
      expect(back.tailZero).toBe(true);
    },
  );
});
