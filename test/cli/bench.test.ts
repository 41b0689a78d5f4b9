// `amibundle bench` on a small generated image: the JSON report's structure, and that its sizes are
// consistent with each other and with the generated image. Times are never asserted, only that
// they were measured (positive). Every restore row must carry the SHA-1 of a restored image equal
// to the generated image's, computed here on a second copy made by the same generator.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLabel, type BenchReport, type EndToEndResult, type StageResult } from '../../src/bench/report.js';
import { isDataSlot, writeSyntheticImage } from '../../src/bench/synthetic-image.js';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/fixtures.js';

const MIB = 1024 * 1024;

let tmp: { dir: string; remove: () => void };
let own: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('bench');
  own = tempDir('bench-own');
});
afterAll(() => {
  tmp.remove();
  own.remove();
});

/** SHA-1 of the image `amibundle bench --size MIB` generates (fill 65), made again here. */
async function generatedImageSha1(mib: number): Promise<string> {
  const image = path.join(own.dir, `bench-${mib}.img`);
  await writeSyntheticImage(image, mib, 65);
  const digest = crypto.createHash('sha1').update(fs.readFileSync(image)).digest('hex');
  fs.rmSync(image);
  return digest;
}

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
      // Linux here: the run-queue wait of the process's threads is counted for every stage.
      expect(s.cpuWaitPercent, s.stage).toBeGreaterThanOrEqual(0);
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
    const runs = report.endToEnd.map(runLabel);
    expect(runs).toEqual([
      'bundle-image gzip:6',
      'unbundle gzip:6',
      'bundle-image zstd:3',
      'unbundle zstd:3',
      'unbundle gzip:9 ec2-ami-tools layout',
    ]);
    expect(report.skipped).toEqual([]);
    for (const e of report.endToEnd) {
      expect(e.imageBytes).toBe(64 * MIB);
      expect(e.dataBytes).toBe(report.image.dataBytes);
      expect(e.seconds).toBeGreaterThan(0);
      expect(e.userSeconds).toBeGreaterThan(0);
      expect(e.systemSeconds).toBeGreaterThanOrEqual(0);
      expect(e.maxRssBytes).toBeGreaterThan(10 * MIB);
      expect(e.dataMbPerSecond).toBeCloseTo(e.dataBytes / 1e6 / e.seconds, 6);
      expect(e.cpuPercent).toBeCloseTo((100 * (e.userSeconds + e.systemSeconds)) / e.seconds, 6);
      expect(e.bundledBytes % 16).toBe(0);
      expect(e.parts).toBe(Math.ceil(e.bundledBytes / (10 * MIB)));
    }
    const pair = (codec: string): EndToEndResult[] =>
      report.endToEnd.filter((e) => e.codec === codec && e.layout === 'amibundle');
    for (const codec of ['gzip', 'zstd']) {
      const [b, u] = pair(codec);
      expect(u!.bundledBytes).toBe(b!.bundledBytes);
      // Whole image vs the 16 MiB sample: the bundle is larger than the sample's compressed size.
      expect(b!.bundledBytes).toBeGreaterThan(stage('compress', codec).outputBytes);
    }
    expect(events.filter((e) => e.type === 'end-to-end')).toHaveLength(5);
  });

  it('restores every bundle, the ec2-ami-tools layout too, to the very image (SHA-1 of the restored image)', async () => {
    const expected = await generatedImageSha1(64);
    const restores = report.endToEnd.filter((e) => e.command === 'unbundle');
    expect(restores).toHaveLength(3);
    for (const u of restores) expect(u.restoredSha1, runLabel(u)).toBe(expected);
    for (const b of report.endToEnd.filter((e) => e.command === 'bundle-image'))
      expect(b.restoredSha1).toBeUndefined();

    // The layout row is its own bundle: one gzip -9 member made by the system's tools, not ours.
    const ec2 = report.endToEnd.find((e) => e.layout === 'ec2-ami-tools')!;
    const ours = report.endToEnd.find((e) => e.command === 'bundle-image' && e.codec === 'gzip')!;
    expect(ec2.bundledBytes).not.toBe(ours.bundledBytes);
    const event = events.find((e) => e.type === 'end-to-end' && e.layout === 'ec2-ami-tools');
    expect(event).toMatchObject({ command: 'unbundle', codec: 'gzip', level: 9, restoredSha1: expected });
  });

  it('leaves nothing behind in --tmp', () => {
    expect(fs.readdirSync(tmp.dir)).toEqual([]);
  });
});

describe('amibundle bench without openssl', () => {
  it('skips the ec2-ami-tools layout row, saying so in one line, and measures the rest', async () => {
    // A PATH with tar and gzip but no openssl (node is started by its full path).
    const bin = path.join(own.dir, 'bin');
    fs.mkdirSync(bin);
    for (const tool of ['tar', 'gzip', 'sh']) {
      const found = ['/usr/bin', '/bin'].map((d) => path.join(d, tool)).find((f) => fs.existsSync(f));
      fs.symlinkSync(found!, path.join(bin, tool));
    }
    const r = await runCli(
      'amibundle',
      [
        'bench',
        '--size',
        '8',
        '--sample-mib',
        '2',
        '--codecs',
        'gzip',
        '--levels',
        '1',
        '--tmp',
        tmp.dir,
        '--json',
      ],
      { env: { PATH: bin } },
    );
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const warnings = out.filter((e) => e.type === 'warning').map((e) => String(e.message));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/ec2-ami-tools layout skipped: openssl not on PATH/);
    const done = out.find((e) => e.type === 'done')!.report as BenchReport;
    expect(done.skipped).toEqual([warnings[0]]);
    expect(done.endToEnd.map(runLabel)).toEqual(['bundle-image gzip:6', 'unbundle gzip:6']);
    expect(fs.readdirSync(tmp.dir)).toEqual([]);
  }, 120_000);
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
