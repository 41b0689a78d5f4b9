// The EBS numbers of issue 15: `to-ebs` and `from-ebs` against the EBS direct test server through
// the test proxy modelling a link (30 ms added per request round trip, a per-connection bandwidth
// cap), reported as blocks/s, MB/s and the fraction of the link's aggregate capacity (connections
// x cap) reached. Run: npm run bench:ebs (BENCH_EBS_MIB, BENCH_EBS_MIB_PER_CONN, BENCH_EBS_CONCURRENCY).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../support/cli.js';
import { startEbsServer } from '../support/ebs-server/index.js';
import { tempDir } from '../support/fixtures.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const MiB = 1024 * 1024;
const BLOCK = 512 * 1024;
const IMAGE_MIB = Number(process.env.BENCH_EBS_MIB ?? 256);
const PER_CONN = Number(process.env.BENCH_EBS_MIB_PER_CONN ?? 4) * MiB;
const CONCURRENCY = Number(process.env.BENCH_EBS_CONCURRENCY ?? 16);

const server = await startEbsServer({ completionDelayMs: 0 });
const proxy = new TcpProxy(Number(new URL(server.url).port));
await proxy.start();
proxy.latencyMs = 15; // each way: 30 ms per request round trip
proxy.bytesPerSecond = PER_CONN;
const tmp = tempDir('ebs-bench');
try {
  const image = path.join(tmp.dir, 'bench.img');
  fs.writeFileSync(image, crypto.randomBytes(IMAGE_MIB * MiB));
  const env = { ...server.env(), AMIBUNDLE_EBS_POLL_MS: '100' };
  const common = ['--endpoint-url', proxy.endpoint, '--concurrency', String(CONCURRENCY)];
  const capacity = CONCURRENCY * PER_CONN;
  const report = (what: string, seconds: number): void => {
    const blocks = (IMAGE_MIB * MiB) / BLOCK;
    const rate = (IMAGE_MIB * MiB) / seconds;
    console.log(
      `${what}: ${blocks} blocks in ${seconds.toFixed(2)} s = ${(blocks / seconds).toFixed(0)} blocks/s, ${(rate / MiB).toFixed(1)} MiB/s, ${((100 * rate) / capacity).toFixed(0)}% of the link (${CONCURRENCY} x ${(PER_CONN / MiB).toFixed(0)} MiB/s, 30 ms per request)`,
    );
  };
  let t = Date.now();
  const up = await runCli('amibundle', ['to-ebs', image, ...common, '--batch'], {
    env,
    timeoutMs: 1_800_000,
  });
  if (up.code !== 0) throw new Error(`to-ebs failed:\n${up.stdout}\n${up.stderr}`);
  report('to-ebs', (Date.now() - t) / 1000);
  const id = /snap-[0-9a-f]+/.exec(up.stdout)![0];
  t = Date.now();
  const down = await runCli(
    'amibundle',
    ['from-ebs', id, '-o', path.join(tmp.dir, 'back.img'), ...common, '--region', server.region],
    { env, timeoutMs: 1_800_000 },
  );
  if (down.code !== 0) throw new Error(`from-ebs failed:\n${down.stdout}\n${down.stderr}`);
  report('from-ebs', (Date.now() - t) / 1000);
} finally {
  tmp.remove();
  await proxy.close();
  await server.close();
}
