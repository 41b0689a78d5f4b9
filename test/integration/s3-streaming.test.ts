// Streaming straight to and from S3, at library level: bundleImage() with the S3 part sink (no
// part on disk; provisional keys renamed at commit; abort removes everything) and
// restoreBundle() with the S3 part source, against a real radosgw started for this file.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleImage } from '../../src/bundle/bundle-image.js';
import type { BundleImageOptions } from '../../src/bundle/bundle-options.js';
import type { PartSink } from '../../src/parts/part-sink.js';
import { parseArgs, type CommandSpec } from '../../src/cli/options.js';
import { silentReporter } from '../../src/events.js';
import { partsHashed } from '../../src/parts/part-digest.js';
import { restoreBundle } from '../../src/restore/restore.js';
import {
  aclFromOptions,
  aclOption,
  s3ConnectionOptions,
  streamingConnectionFromOptions,
} from '../../src/cli/s3-flags.js';
import type { ParsedOptions } from '../../src/cli/options.js';
import {
  openS3PartSink as openSinkWith,
  openS3PartSource as openSourceWith,
  type StreamingContext,
} from '../../src/s3/streaming.js';
import { md5Base64 } from '../../src/s3/bucket.js';
import { RETRY_ON } from '../../src/s3/retry.js';
import { runCli } from '../support/cli.js';
import { key, keysDir, tempDir } from '../support/fixtures.js';
import { startRadosgw, type Radosgw } from '../support/radosgw.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { ACCOUNT, bundleArgs, sha256, writeSparseImage } from './s3-bundles.js';

const MiB = 1024 * 1024;
let gw: Radosgw;
let work: { dir: string; remove: () => void };

/** The flags a command wiring the sink and source would have parsed. */
const spec: CommandSpec = {
  name: 'streaming-test',
  summary: '',
  options: [...s3ConnectionOptions, aclOption],
  examples: [],
  manual: '',
};
// The CLI's composition: the flags resolve to a plain connection (and ACL) the library takes.
const openS3PartSink = (opts: ParsedOptions, url: string, ctx: StreamingContext) =>
  openSinkWith(streamingConnectionFromOptions(opts, ctx.out), aclFromOptions(opts), url, ctx);
const openS3PartSource = (opts: ParsedOptions, url: string, ctx: StreamingContext) =>
  openSourceWith(streamingConnectionFromOptions(opts, ctx.out), url, ctx);
const flags = (endpoint: string, extra: string[] = []): ReturnType<typeof parseArgs> =>
  parseArgs(spec, [
    '--url',
    endpoint,
    '--access-key',
    gw.accessKey,
    '--secret-key',
    gw.secretKey,
    '--acl',
    'public-read',
    ...extra,
  ]);

function bundleOptions(imagePath: string, sink: PartSink): BundleImageOptions {
  return {
    imagePath,
    sink,
    privateKeyPem: key('user-key.pem'),
    userCertPem: key('user-cert.pem'),
    ec2CertPem: key('ec2-cert.pem'),
    user: ACCOUNT,
    architecture: 'x86_64',
    sparse: 'fs',
    compression: { codec: 'gzip', level: 1, threads: 2 },
    out: silentReporter,
  };
}

beforeAll(async () => {
  gw = await startRadosgw();
  work = tempDir('s3-streaming');
}, 180_000);

afterAll(async () => {
  await gw?.stop();
  work?.remove();
});

describe('bundle-image straight to S3, unbundle straight from S3', () => {
  it('a sparse multi-part image: only the bundle lands in the bucket, no part on disk; restored identical with its holes', async () => {
    const imageDir = path.join(work.dir, 'image');
    fs.mkdirSync(imageDir);
    const image = path.join(imageDir, 'sparse.img');
    writeSparseImage(image, 96 * MiB, [
      [0, 8 * MiB],
      [40 * MiB, 9 * MiB],
      [90 * MiB, 6 * MiB],
    ]);

    const sink = await openS3PartSink(flags(gw.endpoint), 's3://streaming/images/v1', {
      out: silentReporter,
    });
    const result = await bundleImage(bundleOptions(image, sink));
    expect(result.manifestLocation).toBe('s3://streaming/images/v1/sparse.img.manifest.xml');
    expect(result.parts.map((p) => p.filename)).toEqual([
      'sparse.img.part.0',
      'sparse.img.part.1',
      'sparse.img.part.2',
    ]);
    expect(fs.readdirSync(imageDir)).toEqual(['sparse.img']);

    // Exactly the bundle: the provisional keys are gone.
    expect(await gw.listKeys('streaming')).toEqual(
      ['sparse.img.manifest.xml', ...result.parts.map((p) => p.filename)].map((n) => `images/v1/${n}`).sort(),
    );
    for (const p of result.parts) {
      const body = await gw.getObject('streaming', `images/v1/${p.filename}`);
      expect(body.length).toBe(p.size);
      expect(crypto.createHash('sha1').update(body).digest('hex')).toBe(p.sha1);
    }
    // Each part sent once, then copied to its final name server-side.
    expect(sink.requests.get('PutObject')).toBe(result.parts.length + 1);
    expect(sink.requests.get('CopyObject')).toBe(result.parts.length);

    const source = await openS3PartSource(
      flags(gw.endpoint),
      's3://streaming/images/v1/sparse.img.manifest.xml',
      { out: silentReporter },
    );
    const dest = path.join(work.dir, 'restored');
    fs.mkdirSync(dest);
    const hashedBefore = partsHashed.bytes;
    try {
      const restored = await restoreBundle({
        manifest: source.manifest,
        source,
        privateKeyPem: key('user-key.pem'),
        certPem: key('user-cert.pem'),
        destination: dest,
        out: silentReporter,
      });
      expect(restored.signatureVerified).toBe(true);
      expect(restored.partsChecked).toBe(3);
      // Each part hashed once, as it arrived from S3; the reader trusts that check.
      expect(partsHashed.bytes - hashedBefore).toBe(source.manifest.manifest.image.bundledSize);
    } finally {
      source.close();
    }
    expect(fs.readdirSync(dest)).toEqual(['sparse.img']);
    const out = path.join(dest, 'sparse.img');
    expect(fs.statSync(out).size).toBe(96 * MiB);
    expect(sha256(out)).toBe(sha256(image));
    // Holes kept: about 23 MiB of data allocated for 96 MiB of file.
    expect(fs.statSync(out).blocks * 512).toBeLessThan(40 * MiB);
    expect(source.requests.get('GetObject')).toBe(4);
  });

  it('a failure in the middle of bundling: abort() removes every object the run stored', async () => {
    const image = path.join(work.dir, 'fail.img');
    writeSparseImage(image, 40 * MiB, [[0, 35 * MiB]]);
    const s3 = await openS3PartSink(flags(gw.endpoint), 's3://streaming/failing', { out: silentReporter });
    let opened = 0;
    const failing: PartSink = {
      description: s3.description,
      openPart: async (index) => {
        if (++opened === 3) {
          // Parts 0 and 1 are stored (provisionally) by now.
          while ((await gw.listKeys('streaming', 'failing/')).length < 2)
            await new Promise((r) => setTimeout(r, 50));
          throw new Error('the disk went away');
        }
        return s3.openPart(index);
      },
      commit: (parts, name, manifest) => s3.commit(parts, name, manifest),
      abort: () => s3.abort(),
    };
    await expect(bundleImage(bundleOptions(image, failing))).rejects.toThrow('the disk went away');
    expect(await gw.listKeys('streaming', 'failing/')).toEqual([]);
  });

  it('a damaged part in S3 is fetched again, then refused with a clear error', async () => {
    const manifestKey = 'images/v1/sparse.img.manifest.xml';
    const good = await gw.getObject('streaming', 'images/v1/sparse.img.part.1');
    await gw.putObject(
      'streaming',
      'images/v1/sparse.img.part.1',
      Buffer.concat([good.subarray(1), Buffer.from('x')]),
    );
    const source = await openS3PartSource(flags(gw.endpoint), `s3://streaming/${manifestKey}`, {
      out: silentReporter,
    });
    try {
      await expect(source.readPart('sparse.img.part.1', 1)).rejects.toThrow(
        /^part s3:\/\/streaming\/images\/v1\/sparse\.img\.part\.1 does not match the manifest: SHA-1 [0-9a-f]{40}, the manifest says [0-9a-f]{40}$/,
      );
      // The manifest and every attempt at part 1 (streaming always retries); the restore's reader,
      // not the source, asks for parts ahead (parts/read-ahead.ts).
      expect(source.requests.get('GetObject')).toBe(1 + RETRY_ON.attempts);
    } finally {
      source.close();
      await gw.putObject('streaming', 'images/v1/sparse.img.part.1', good);
    }
  });
});

describe('S3 part sink', () => {
  it('back-pressure: with --concurrency 2 and the server not answering, the third close() waits', async () => {
    const proxy = new TcpProxy(gw.port);
    await proxy.start();
    const sink = await openS3PartSink(
      flags(proxy.endpoint, ['--concurrency', '2']),
      's3://streaming/pressure',
      {
        out: silentReporter,
      },
    );
    try {
      proxy.hold();
      const body = Buffer.alloc(MiB, 7);
      const digests = { sha1: '', md5: md5Base64(body), size: body.length };
      let closed = 0;
      const producer = (async () => {
        for (let i = 0; i < 4; i++) {
          const w = await sink.openPart(i);
          await w.write(body);
          await w.close(digests);
          closed++;
        }
      })();
      while (proxy.count('PUT') < 2) await new Promise((r) => setTimeout(r, 20));
      // Give a wrong implementation every chance to start a third upload.
      await new Promise((r) => setTimeout(r, 500));
      expect(proxy.count('PUT')).toBe(2);
      expect(closed).toBe(2);
      proxy.release();
      await producer;
      expect(closed).toBe(4);
    } finally {
      proxy.release();
      await sink.abort();
      await proxy.close();
    }
    expect(await gw.listKeys('streaming', 'pressure/')).toEqual([]);
  });

  it('refuses a manifest key as --upload target, and --from without a manifest', async () => {
    await expect(
      openS3PartSink(flags(gw.endpoint), 's3://streaming/x/a.manifest.xml', { out: silentReporter }),
    ).rejects.toThrow('--upload takes the place to put the bundle');
    await expect(
      openS3PartSource(flags(gw.endpoint), 's3://streaming/x/', { out: silentReporter }),
    ).rejects.toThrow('--from must name the manifest');
  });
});

describe('the same through the command line', () => {
  it('bundle-image --upload, then unbundle --from: identical image, no part on disk, JSON done event names the S3 location', async () => {
    const dir = path.join(work.dir, 'cli');
    fs.mkdirSync(dir);
    const image = path.join(dir, 'cli.img');
    writeSparseImage(image, 24 * MiB, [
      [0, 11 * MiB],
      [20 * MiB, 2 * MiB],
    ]);
    const s3 = ['--url', gw.endpoint, '--access-key', gw.accessKey, '--secret-key', gw.secretKey];
    const b = await runCli('amibundle', [
      'bundle-image',
      ...bundleArgs(image, dir).filter((_a, i, all) => all[i] !== '-d' && all[i - 1] !== '-d'),
      '--upload',
      's3://cli-streaming/img',
      '--acl',
      'public-read',
      '--json',
      ...s3,
    ]);
    expect(b.code, b.stderr).toBe(0);
    const done = b.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; manifest?: string })
      .find((e) => e.type === 'done');
    expect(done?.manifest).toBe('s3://cli-streaming/img/cli.img.manifest.xml');
    expect(fs.readdirSync(dir)).toEqual(['cli.img']);
    expect(await gw.listKeys('cli-streaming')).toEqual(
      ['img/cli.img.manifest.xml', 'img/cli.img.part.0', 'img/cli.img.part.1'].sort(),
    );
    const dest = path.join(dir, 'out');
    fs.mkdirSync(dest);
    const u = await runCli('ec2-unbundle', [
      '--from',
      's3://cli-streaming/img/cli.img.manifest.xml',
      '-k',
      path.join(keysDir, 'user-key.pem'),
      '--cert',
      path.join(keysDir, 'user-cert.pem'),
      '-d',
      dest,
      ...s3,
    ]);
    expect(u.code, u.stderr).toBe(0);
    expect(fs.readdirSync(dest)).toEqual(['cli.img']);
    expect(sha256(path.join(dest, 'cli.img'))).toBe(sha256(image));
  });

  it('unbundle refuses --manifest together with --from, and neither', async () => {
    const both = await runCli('ec2-unbundle', [
      '-m',
      __filename,
      '--from',
      's3://b/x.manifest.xml',
      '-k',
      path.join(keysDir, 'user-key.pem'),
    ]);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/^ERROR: --manifest and --from may not both be provided/);
    const neither = await runCli('ec2-unbundle', ['-k', path.join(keysDir, 'user-key.pem')]);
    expect(neither.code).toBe(1);
    expect(neither.stderr).toMatch(/^ERROR: missing mandatory parameter: --manifest \(or --from/);
  });
});
