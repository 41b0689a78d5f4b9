// `amibundle bench`'s compress stage must drive the compressor as bundle-image does, or its figure
// describes some other program. Both go through compressThrough() (bundle/feed.ts), watched here
// by a wrapper that records what each caller feeds the real function: on an image whose data all
// fits in the sample, the stage must feed the compressor exactly the chunks bundle-image feeds it
// (tar header, 1 MiB reads, trailer), through the same function.
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { writeBenchKeys } from '../../src/bench/bench-keys.js';
import { measureStages } from '../../src/bench/stages.js';
import { writeSyntheticImage } from '../../src/bench/synthetic-image.js';
import { bundleImage } from '../../src/bundle/bundle-image.js';
import type * as Feed from '../../src/bundle/feed.js';
import { ParallelGzip } from '../../src/codec/parallel-gzip.js';
import { tempDir } from '../support/fixtures.js';

interface Drive {
  readonly chunkLengths: number[];
  readonly compressor: Duplex;
  readonly after: readonly (Duplex | Writable)[];
}

const drives = vi.hoisted(() => [] as Drive[]);

vi.mock('../../src/bundle/feed.js', async (importOriginal) => {
  const real = await importOriginal<typeof Feed>();
  const compressThrough: typeof real.compressThrough = (chunks, compressor, after, opts) => {
    const drive: Drive = { chunkLengths: [], compressor, after };
    drives.push(drive);
    async function* recorded(): AsyncGenerator<Buffer> {
      for await (const c of chunks) {
        drive.chunkLengths.push(c.length);
        yield c;
      }
    }
    return real.compressThrough(recorded(), compressor, after, opts);
  };
  return { ...real, compressThrough };
});

const MIB = 1024 * 1024;
let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('compress-driving');
});
afterAll(() => tmp.remove());

describe('the bench compress stage and bundle-image', () => {
  it('feed the compressor the same chunks through the same function', async () => {
    const image = path.join(tmp.dir, 'bench.img');
    await writeSyntheticImage(image, 12, 65);
    const keyDir = path.join(tmp.dir, 'keys');
    fs.mkdirSync(keyDir, { mode: 0o700 });
    const keys = await writeBenchKeys(keyDir);
    const key = fs.readFileSync(keys.keyFile, 'utf8');
    const cert = fs.readFileSync(keys.certFile, 'utf8');
    const bundleDir = path.join(tmp.dir, 'bundle');
    fs.mkdirSync(bundleDir);

    const bundled = await bundleImage({
      imagePath: image,
      name: 'bench.img',
      destination: bundleDir,
      privateKeyPem: key,
      userCertPem: cert,
      ec2CertPem: cert,
      user: '123456789012',
      architecture: 'x86_64',
      sparse: 'fs',
      compression: { codec: 'gzip', level: 1, threads: 2 },
    });
    expect(drives).toHaveLength(1);
    const workDir = path.join(tmp.dir, 'work');
    fs.mkdirSync(workDir);
    const staged = await measureStages({
      imagePath: image,
      sampleBytes: 64 * MIB,
      compress: [{ codec: 'gzip', level: 1 }],
      threads: 2,
      workDir,
    });
    // The sample is the whole image (the bench names its member bench.img): the bundle's tar stream.
    expect(staged.sample.dataBytes).toBe(bundled.dataBytes);
    expect(staged.sample.digest).toBe(bundled.digest);

    expect(drives).toHaveLength(2);
    const [bundle, stage] = drives as [Drive, Drive];
    // bundle-image: compressor -> cipher -> part splitter; the stage: compressor -> collector.
    expect(bundle.after).toHaveLength(2);
    expect(stage.after).toHaveLength(1);
    for (const d of [bundle, stage]) {
      expect(d.compressor).toBeInstanceOf(ParallelGzip);
      expect((d.compressor as ParallelGzip).inFlightLimit).toBe(2);
    }
    // Header blocks first, then the image's 1 MiB reads, then padding and end of archive.
    expect(bundle.chunkLengths.length).toBeGreaterThan(3);
    expect(bundle.chunkLengths[0]! % 512).toBe(0);
    expect(bundle.chunkLengths[0]).toBeLessThan(MIB);
    expect(stage.chunkLengths).toEqual(bundle.chunkLengths);
    expect(stage.chunkLengths.reduce((s, n) => s + n, 0)).toBe(staged.sample.tarBytes);
  }, 120_000);
});
