// The S3 numbers of issue 4, measured in one run against a radosgw started for it: upload and
// download rates with --concurrency 1 and the default, directly and through the test proxy set
// to model a real S3 link (30 ms added per request, 16 MiB/s per connection), and streaming
// bundle-to-S3 against bundle-to-dir followed by upload. Run: node scripts/bench-s3.mjs
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { bundleImage } from '../../src/bundle/bundle-image.js';
import type { BundleImageOptions } from '../../src/bundle/bundle-options.js';
import type { PartSink } from '../../src/parts/part-sink.js';
import { parseArgs, type CommandSpec } from '../../src/cli/options.js';
import { silentReporter } from '../../src/events.js';
import {
  aclFromOptions,
  aclOption,
  connectionFromOptions,
  s3ConnectionOptions,
  streamingConnectionFromOptions,
} from '../../src/cli/s3-flags.js';
import { downloadBundle } from '../../src/s3/download-bundle.js';
import { openS3PartSink } from '../../src/s3/streaming.js';
import { uploadBundle } from '../../src/s3/upload-bundle.js';
import { DEFAULT_CONCURRENCY } from '../../src/s3/connection.js';
import { key, tempDir } from '../support/fixtures.js';
import { startRadosgw, type Radosgw } from '../support/radosgw.js';
import { ACCOUNT, writeRandomImage } from './s3-bundles.js';

const MiB = 1024 * 1024;
const here = path.dirname(fileURLToPath(import.meta.url));
const IMAGE_BYTES = Number(process.env.BENCH_S3_MIB ?? 200) * MiB;
const REPEAT = Number(process.env.BENCH_S3_REPEAT ?? 2);
const spec: CommandSpec = {
  name: 'bench-s3',
  summary: '',
  options: [...s3ConnectionOptions, aclOption],
  examples: [],
  manual: '',
};

function flags(gw: Radosgw, endpoint: string, concurrency: number): ReturnType<typeof parseArgs> {
  return parseArgs(spec, [
    '--url',
    endpoint,
    '--access-key',
    gw.accessKey,
    '--secret-key',
    gw.secretKey,
    '--acl',
    'public-read',
    '--concurrency',
    String(concurrency),
  ]);
}

function bundleOptions(imagePath: string): BundleImageOptions {
  return {
    imagePath,
    privateKeyPem: key('user-key.pem'),
    userCertPem: key('user-cert.pem'),
    ec2CertPem: key('ec2-cert.pem'),
    user: ACCOUNT,
    architecture: 'x86_64',
    sparse: 'fs',
    compression: { codec: 'gzip', level: 6, threads: 2 },
    out: silentReporter,
  };
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** Best (least disturbed) of REPEAT runs: the machine may be shared. */
async function best(fn: () => Promise<number>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < REPEAT; i++) min = Math.min(min, await fn());
  return min;
}

/** The proxy in its own process, so that its work does not slow the measured client. */
async function startProxyProcess(
  target: number | 'discard',
  latencyMs: number,
  bytesPerSecond: number,
): Promise<{ endpoint: string; stop: () => Promise<void> }> {
  const root = path.resolve(here, '../..');
  const child = spawn(
    process.execPath,
    [
      path.join(root, 'node_modules/vite-node/vite-node.mjs'),
      path.join(here, 's3-proxy-process.ts'),
      String(target),
      String(latencyMs),
      String(bytesPerSecond),
    ],
    { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`proxy process exited (${code})`)));
  });
  const port = /^PORT (\d+)$/.exec(line)?.[1];
  if (!port) throw new Error(`proxy process said '${line}'`);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
  };
}

async function main(): Promise<void> {
  const work = tempDir('bench-s3');
  const gw = await startRadosgw();
  let run = 0;
  const clearBucket = async (): Promise<void> => {
    for (const k of await gw.listKeys('bench')) await gw.deleteObject('bench', k);
  };
  try {
    const image = path.join(work.dir, 'bench.img');
    writeRandomImage(image, IMAGE_BYTES);
    const bundleDir = path.join(work.dir, 'bundle');
    fs.mkdirSync(bundleDir);
    const bundled = await bundleImage({ ...bundleOptions(image), destination: bundleDir });
    const manifestPath = path.join(bundleDir, 'bench.img.manifest.xml');
    const bytes = bundled.bundledSize;
    const rate = (seconds: number): string => `${(bytes / MiB / seconds).toFixed(1)} MiB/s`;

    const links = [
      { name: 'direct', latencyMs: 0, bytesPerSecond: 0 },
      { name: 'S3-like link', latencyMs: 15, bytesPerSecond: 16 * MiB },
    ];
    const rows: string[][] = [];
    const ratios: string[] = [];
    for (const link of links) {
      const proxy =
        link.latencyMs > 0
          ? await startProxyProcess(gw.port, link.latencyMs, link.bytesPerSecond)
          : undefined;
      const endpoint = proxy?.endpoint ?? gw.endpoint;
      try {
        const results = new Map<string, number>();
        for (const concurrency of [1, DEFAULT_CONCURRENCY]) {
          const connection = connectionFromOptions(flags(gw, endpoint, concurrency), silentReporter);
          const up = await best(async () => {
            const prefix = `run${++run}/`;
            const seconds = await timed(() =>
              uploadBundle({
                manifestPath,
                target: { bucket: 'bench', prefix },
                connection,
                acl: 'public-read',
                out: silentReporter,
              }),
            );
            await clearBucket();
            return seconds;
          });
          const prefix = `run${++run}/`;
          await uploadBundle({
            manifestPath,
            target: { bucket: 'bench', prefix },
            connection,
            acl: 'public-read',
            out: silentReporter,
          });
          const dl = await best(async () => {
            const down = path.join(work.dir, `down${++run}`);
            fs.mkdirSync(down);
            const seconds = await timed(() =>
              downloadBundle({
                source: { bucket: 'bench', prefix },
                manifestName: 'bench.img.manifest.xml',
                directory: down,
                connection,
                out: silentReporter,
              }),
            );
            fs.rmSync(down, { recursive: true });
            return seconds;
          });
          await clearBucket();
          results.set(`up${concurrency}`, up);
          results.set(`down${concurrency}`, dl);
          rows.push([link.name, `upload --concurrency ${concurrency}`, rate(up), `${up.toFixed(2)} s`]);
          rows.push([link.name, `download --concurrency ${concurrency}`, rate(dl), `${dl.toFixed(2)} s`]);
        }
        ratios.push(
          `${link.name}: default concurrency (${DEFAULT_CONCURRENCY}) vs one at a time: upload ${(results.get('up1')! / results.get(`up${DEFAULT_CONCURRENCY}`)!).toFixed(1)}x, download ${(results.get('down1')! / results.get(`down${DEFAULT_CONCURRENCY}`)!).toFixed(1)}x`,
        );

        // Two steps (bundle into a directory, then upload) against one streaming pass, interleaved.
        const opts = flags(gw, endpoint, DEFAULT_CONCURRENCY);
        let twoStep = { total: Infinity, bundle: 0, upload: 0 };
        let streaming = { total: Infinity, commit: 0 };
        for (let i = 0; i < REPEAT; i++) {
          const dir = path.join(work.dir, `two-step${++run}`);
          fs.mkdirSync(dir);
          const b = await timed(() => bundleImage({ ...bundleOptions(image), destination: dir }));
          const u = await timed(() =>
            uploadBundle({
              manifestPath: path.join(dir, 'bench.img.manifest.xml'),
              target: { bucket: 'bench', prefix: `run${run}/` },
              connection: connectionFromOptions(opts, silentReporter),
              acl: 'public-read',
              out: silentReporter,
            }),
          );
          fs.rmSync(dir, { recursive: true });
          if (b + u < twoStep.total) twoStep = { total: b + u, bundle: b, upload: u };
          await clearBucket();

          let commit = 0;
          const total = await timed(async () => {
            const sink = await openS3PartSink(
              streamingConnectionFromOptions(opts, silentReporter),
              aclFromOptions(opts),
              `s3://bench/run${++run}`,
              { out: silentReporter },
            );
            const timedSink: PartSink = {
              description: sink.description,
              openPart: (index) => sink.openPart(index),
              commit: async (parts, name, manifest) => {
                const t0 = performance.now();
                const where = await sink.commit(parts, name, manifest);
                commit = (performance.now() - t0) / 1000;
                return where;
              },
              abort: () => sink.abort(),
            };
            await bundleImage({ ...bundleOptions(image), sink: timedSink });
          });
          if (total < streaming.total) streaming = { total, commit };
          await clearBucket();
        }
        rows.push([
          link.name,
          'bundle-to-dir, then upload',
          '',
          `${twoStep.total.toFixed(2)} s (${twoStep.bundle.toFixed(2)} + ${twoStep.upload.toFixed(2)})`,
        ]);
        rows.push([
          link.name,
          'streaming bundle-to-S3',
          '',
          `${streaming.total.toFixed(2)} s (commit ${streaming.commit.toFixed(2)})`,
        ]);
        ratios.push(
          `${link.name}: streaming takes ${((streaming.total / twoStep.total) * 100).toFixed(0)}% of the two steps' time`,
        );
      } finally {
        await proxy?.stop();
      }
    }

    // The same link to a server that stores nothing: what the client and the link can do when
    // the local server's CPU is not the limit.
    const discard = await startProxyProcess('discard', 15, 16 * MiB);
    try {
      const up = new Map<number, number>();
      for (const concurrency of [1, DEFAULT_CONCURRENCY]) {
        const connection = connectionFromOptions(flags(gw, discard.endpoint, concurrency), silentReporter);
        const seconds = await best(() =>
          timed(() =>
            uploadBundle({
              manifestPath,
              target: { bucket: 'bench', prefix: `run${++run}/` },
              connection,
              acl: 'public-read',
              out: silentReporter,
            }),
          ),
        );
        up.set(concurrency, seconds);
        rows.push([
          'S3-like link, discarding server',
          `upload --concurrency ${concurrency}`,
          rate(seconds),
          `${seconds.toFixed(2)} s`,
        ]);
      }
      ratios.push(
        `S3-like link, discarding server: default concurrency vs one at a time: upload ${(up.get(1)! / up.get(DEFAULT_CONCURRENCY)!).toFixed(1)}x`,
      );
    } finally {
      await discard.stop();
    }

    const header = ['link', 'measurement', 'rate', 'wall time (best of ' + REPEAT + ')'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
    console.log(
      `\nS3 benchmark: bundle of ${(bytes / MiB).toFixed(1)} MiB (${bundled.parts.length} parts), radosgw on 127.0.0.1, ${os.availableParallelism()} CPUs (load average before: ${loadBefore}); ` +
        `S3-like link = test proxy (own process) adding 15 ms each way (30 ms per request) and 16 MiB/s per connection\n`,
    );
    console.log(line(header));
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const r of rows) console.log(line(r));
    console.log('');
    for (const r of ratios) console.log(r);
    console.log(
      `load average after: ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
  } finally {
    await gw.stop();
    work.remove();
  }
}

const loadBefore = os
  .loadavg()
  .map((l) => l.toFixed(1))
  .join(' ');
await main();
