// The EBS numbers of issue 15: `to-ebs` and `from-ebs` against the EBS direct test server through
// the test proxy modelling a link (30 ms added per request round trip, a per-connection bandwidth
// cap), reported as blocks/s, MiB/s and the fraction of the link's aggregate capacity (connections
// x cap) reached, twice per command: end to end (process start to exit) and for the block
// transfer alone as the server saw it (first block request's arrival to last block answer's end),
// with the fixed costs around it and the requests and connections the proxy carried.
// The default link (16 x 1 MiB/s) stays well below what this machine can move with client, server
// and proxy on the same cores, so the figures measure amibundle, not the machine.
// Run: npm run bench:ebs (BENCH_EBS_MIB, BENCH_EBS_MIB_PER_CONN, BENCH_EBS_CONCURRENCY).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../support/cli.js';
import { startEbsServer } from '../support/ebs-server/index.js';
import { tempDir } from '../support/fixtures.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const MiB = 1024 * 1024;
const BLOCK = 512 * 1024;
const IMAGE_MIB = Number(process.env.BENCH_EBS_MIB ?? 512);
const PER_CONN = Number(process.env.BENCH_EBS_MIB_PER_CONN ?? 1) * MiB;
const CONCURRENCY = Number(process.env.BENCH_EBS_CONCURRENCY ?? 16);
/** BENCH_EBS_BIN: the bin/ directory of another copy to measure (npm run bench:ebs -- --bin DIR). */
const binDir = process.env.BENCH_EBS_BIN;

const now = (): number => performance.timeOrigin + performance.now();

const server = await startEbsServer({ completionDelayMs: 0 });
const proxy = new TcpProxy(Number(new URL(server.url).port));
await proxy.start();
proxy.latencyMs = 15; // each way: 30 ms per request round trip
proxy.bytesPerSecond = PER_CONN;
const tmp = tempDir('ebs-bench');
const timeline = server.faults.counters.timeline;
try {
  const image = path.join(tmp.dir, 'bench.img');
  fs.writeFileSync(image, crypto.randomBytes(IMAGE_MIB * MiB));
  const env = { ...server.env(), AMIBUNDLE_EBS_POLL_MS: '100' };
  const common = ['--endpoint-url', proxy.endpoint, '--concurrency', String(CONCURRENCY)];
  const capacity = CONCURRENCY * PER_CONN;
  const blocks = (IMAGE_MIB * MiB) / BLOCK;
  const rate = (seconds: number): string =>
    `${(blocks / seconds).toFixed(1)} blocks/s, ${(IMAGE_MIB / seconds).toFixed(2)} MiB/s, ${((100 * IMAGE_MIB * MiB) / seconds / capacity).toFixed(1)}% of the link`;
  console.log(`measured: ${binDir ? path.join(binDir, 'amibundle.js') : 'this checkout (bin/amibundle.js)'}`);
  console.log(
    `link: ${CONCURRENCY} connections x ${(PER_CONN / MiB).toFixed(2)} MiB/s, 30 ms per request round trip; image ${IMAGE_MIB} MiB = ${blocks} blocks; ideal ${((IMAGE_MIB * MiB) / capacity).toFixed(1)} s`,
  );

  /** Runs one command and reports it; `blockOp` is the block call, `firstOp` the call that opens the transfer. */
  const measure = async (what: string, args: string[], blockOp: string, firstOp: string): Promise<string> => {
    for (const k of Object.keys(timeline)) delete timeline[k];
    const requestsBefore = proxy.requests.length;
    const connectionsBefore = proxy.connections;
    const start = now();
    const r = await runCli('amibundle', args, { env, timeoutMs: 1_800_000, ...(binDir ? { binDir } : {}) });
    const exit = now();
    if (r.code !== 0) throw new Error(`${what} failed:\n${r.stdout}\n${r.stderr}`);
    const ops = Object.values(timeline);
    const firstRequest = Math.min(...ops.map((t) => t.first));
    const b = { ...timeline[blockOp]! };
    // A GET's answer is sent by the server at once and then crosses the link: it ends on arrival.
    if (blockOp === 'GetSnapshotBlock') b.last = Math.max(b.last, proxy.lastDownAt);
    const requests = proxy.requests.slice(requestsBefore);
    const byOp = new Map<string, number>();
    for (const q of requests) byOp.set(q.method, (byOp.get(q.method) ?? 0) + 1);
    console.log(`${what}:`);
    console.log(`  end to end   ${((exit - start) / 1000).toFixed(2)} s = ${rate((exit - start) / 1000)}`);
    console.log(
      `  block phase  ${((b.last - b.first) / 1000).toFixed(2)} s = ${rate((b.last - b.first) / 1000)} (server: first ${blockOp} in to last answered${blockOp === 'GetSnapshotBlock' ? ' and through the link' : ''}; at most ${b.maxOpen} open at once)`,
    );
    console.log(
      `  fixed costs  start -> first request ${((firstRequest - start) / 1000).toFixed(2)} s; ${firstOp} -> first block ${((b.first - timeline[firstOp]!.first) / 1000).toFixed(2)} s; last block -> exit ${((exit - b.last) / 1000).toFixed(2)} s`,
    );
    console.log(
      `  proxy        ${requests.length} requests (${[...byOp].map(([m, n]) => `${n} ${m}`).join(', ')}) on ${proxy.connections - connectionsBefore} connections`,
    );
    return r.stdout;
  };

  const up = await measure(
    'to-ebs',
    ['to-ebs', image, ...common, '--batch'],
    'PutSnapshotBlock',
    'StartSnapshot',
  );
  const id = /snap-[0-9a-f]+/.exec(up)![0];
  await measure(
    'from-ebs',
    ['from-ebs', id, '-o', path.join(tmp.dir, 'back.img'), ...common, '--region', server.region],
    'GetSnapshotBlock',
    'ListSnapshotBlocks',
  );
  console.log(
    `load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (${os.cpus().length} cores)`,
  );
} finally {
  tmp.remove();
  await proxy.close();
  await server.close();
}
