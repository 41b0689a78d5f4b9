// `amibundle bench` on a small generated image: the JSON report's structure, and that its sizes are
// consistent with each other and with the generated image. Times are never asserted, only that
// they were measured (positive).
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport, EndToEndResult, StageResult } from '../../src/bench/report.js';
import { isDataSlot } from '../../src/bench/synthetic-image.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/fixtures.js';

const MIB = 1024 * 1024;

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('bench');
});
afterAll(() => tmp.remove());

describe('amibundle bench --json', () => {
  let events: Record<string, unknown>[];
  let report: BenchReport;

  beforeAll(async () => {
    const r = await runCli('amibundle', [
      'bench',
      '--size',
      '64',
      '--sample-mib',
      '16',
      '--levels',
      '1',
      '--codecs',
      'gzip,zstd',
      '--tmp',
      tmp.dir,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = events.find((e) => e.type === 'done' && e.command === 'bench');
    expect(done).toBeDefined();
    report = done!.report as BenchReport;
  }, 120_000);

  const stage = (name: string, codec?: string): StageResult => {
    const s = report.stages.find((x) => x.stage === name && (codec === undefined || x.codec === codec));
    expect(s, `${name} ${codec ?? ''}`).toBeDefined();
    return s!;
  };

  it('describes the generated image and the sample', () => {
    let slots = 0;
    for (let i = 0; i < 64; i++) if (isDataSlot(i, 65)) slots++;
    expect(report.image.generated).toBe(true);
    expect(report.image.size).toBe(64 * MIB);
    expect(report.image.dataBytes).toBe(slots * MIB);
    expect(report.image.sparse).toBe(true);
    expect(report.image.extents).toBeGreaterThan(1);
    expect(report.sample.dataBytes).toBe(16 * MIB);
    // Header, data, end-of-archive, padded to GNU tar's 10240-byte record.
    expect(report.sample.tarBytes).toBeGreaterThan(16 * MIB);
    expect(report.sample.tarBytes % 10240).toBe(0);
    expect(report.sample.digest).toMatch(/^[0-9a-f]{40}$/);
    expect(report.threads).toBeGreaterThanOrEqual(1);
    expect(report.peakRssBytes).toBeGreaterThan(16 * MIB);
  });

  it('measures every stage once, each with positive numbers, and streams them as events', () => {
    const labels = report.stages.map((s) => (s.codec ? `${s.stage} ${s.codec}:${s.level}` : s.stage));
    expect(labels).toEqual([
      'read+extents',
      'tar',
      'sha1',
      'compress gzip:1',
      'compress zstd:1',
      'encrypt',
      'split+hash',
      'decrypt',
      'inflate gzip:1',
      'inflate zstd:1',
      'write',
    ]);
    for (const s of report.stages) {
      expect(s.seconds, s.stage).toBeGreaterThan(0);
      expect(s.cpuSeconds, s.stage).toBeGreaterThanOrEqual(0);
      expect(s.mbPerSecond, s.stage).toBeGreaterThan(0);
      expect(s.dataMbPerSecond, s.stage).toBeGreaterThan(0);
      expect(s.inputBytes, s.stage).toBeGreaterThan(0);
      expect(s.outputBytes, s.stage).toBeGreaterThan(0);
      expect(s.mbPerSecond).toBeCloseTo(s.inputBytes / 1e6 / s.seconds, 6);
    }
    expect(events.filter((e) => e.type === 'stage')).toHaveLength(report.stages.length);
  });

  it('reports sizes that agree from stage to stage', () => {
    const tar = report.sample.tarBytes;
    expect(stage('read+extents').inputBytes).toBe(16 * MIB);
    expect(stage('tar').outputBytes).toBe(tar);
    expect(stage('sha1').inputBytes).toBe(tar);
    const gz = stage('compress', 'gzip');
    const zs = stage('compress', 'zstd');
    for (const c of [gz, zs]) {
      expect(c.inputBytes).toBe(tar);
      expect(c.outputBytes).toBeLessThan(tar);
      expect(c.ratio).toBeCloseTo(c.outputBytes / tar, 9);
    }
    // Encrypt carries the gzip output; PKCS#7 always adds 1..16 bytes.
    const enc = stage('encrypt');
    expect(enc.inputBytes).toBe(gz.outputBytes);
    expect(enc.outputBytes).toBe((Math.floor(gz.outputBytes / 16) + 1) * 16);
    expect(stage('split+hash').inputBytes).toBe(enc.outputBytes);
    expect(stage('split+hash').outputBytes).toBe(enc.outputBytes);
    expect(stage('decrypt').inputBytes).toBe(enc.outputBytes);
    expect(stage('decrypt').outputBytes).toBe(gz.outputBytes);
    expect(stage('inflate', 'gzip').inputBytes).toBe(gz.outputBytes);
    expect(stage('inflate', 'zstd').inputBytes).toBe(zs.outputBytes);
    expect(stage('inflate', 'gzip').outputBytes).toBe(tar);
    expect(stage('inflate', 'zstd').outputBytes).toBe(tar);
    expect(stage('write').inputBytes).toBe(16 * MIB);
    expect(stage('write').outputBytes).toBe(16 * MIB);
  });

  it('bundles and unbundles the whole image end to end, with child CPU and peak RSS', () => {
    const runs = report.endToEnd.map((e) => `${e.command} ${e.codec}:${e.level}`);
    expect(runs).toEqual([
      'bundle-image gzip:6',
      'unbundle gzip:6',
      'bundle-image zstd:3',
      'unbundle zstd:3',
    ]);
    for (const e of report.endToEnd) {
      expect(e.imageBytes).toBe(64 * MIB);
      expect(e.dataBytes).toBe(report.image.dataBytes);
      expect(e.seconds).toBeGreaterThan(0);
      expect(e.userSeconds).toBeGreaterThan(0);
      expect(e.systemSeconds).toBeGreaterThanOrEqual(0);
      expect(e.maxRssBytes).toBeGreaterThan(10 * MIB);
      expect(e.dataMbPerSecond).toBeCloseTo(e.dataBytes / 1e6 / e.seconds, 6);
      expect(e.bundledBytes % 16).toBe(0);
      expect(e.parts).toBe(Math.ceil(e.bundledBytes / (10 * MIB)));
    }
    const pair = (codec: string): EndToEndResult[] => report.endToEnd.filter((e) => e.codec === codec);
    for (const codec of ['gzip', 'zstd']) {
      const [b, u] = pair(codec);
      expect(u!.bundledBytes).toBe(b!.bundledBytes);
      // Whole image vs the 16 MiB sample: the bundle is larger than the sample's compressed size.
      expect(b!.bundledBytes).toBeGreaterThan(stage('compress', codec).outputBytes);
    }
    expect(events.filter((e) => e.type === 'end-to-end')).toHaveLength(4);
  });

  it('leaves nothing behind in --tmp', () => {
    expect(fs.readdirSync(tmp.dir)).toEqual([]);
  });
});

describe('amibundle bench refuses bad options', () => {
  it('a level no selected codec accepts', async () => {
    const r = await runCli('amibundle', ['bench', '--codecs', 'gzip', '--levels', '12', '--tmp', tmp.dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--levels has invalid value');
  });

  it('--size together with -i', async () => {
    const image = `${tmp.dir}/given.img`;
    fs.writeFileSync(image, 'x');
    const r = await runCli('amibundle', ['bench', '-i', image, '--size', '8', '--tmp', tmp.dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--size and --fill describe a generated image');
    fs.rmSync(image);
  });
});
