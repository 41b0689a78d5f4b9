// `amibundle bench`'s end-to-end peak RSS must be the child's own. The benchmark process is large
// (it holds its sample in memory), and getrusage's ru_maxrss carries a parent's size into a child
// through fork and exec. Here the test process first grows well past anything the commands need,
// then runs the bench's end-to-end measurement while watching each child from outside (its
// /proc/PID/status VmHWM, sampled until it exits): the figure the bench reports must agree with
// that within 10%, for the restore of the ec2-ami-tools layout bundle too.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBenchKeys } from '../../src/bench/bench-keys.js';
import { measureEndToEnd } from '../../src/bench/end-to-end.js';
import { runLabel } from '../../src/bench/report.js';
import { writeSyntheticImage } from '../../src/bench/synthetic-image.js';
import { tempDir } from '../support/fixtures.js';

const MIB = 1024 * 1024;

/** Samples a process's VmHWM (KiB) every few ms until it is gone; `peak()` is the last value seen. */
function watchPeak(pid: number): { peak: () => number; stop: () => void } {
  let last = 0;
  const sample = (): void => {
    try {
      const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
      if (m) last = Math.max(last, Number(m[1]) * 1024);
    } catch {
      // exited
    }
  };
  sample();
  const timer = setInterval(sample, 2);
  return { peak: () => last, stop: () => clearInterval(timer) };
}

let tmp: { dir: string; remove: () => void };
let ballast: Buffer | undefined;
beforeAll(() => {
  tmp = tempDir('bench-rss');
  // 768 MiB touched: far above what bundling or restoring a 64 MiB image takes.
  ballast = Buffer.alloc(768 * MIB, 1);
});
afterAll(() => {
  ballast = undefined;
  tmp.remove();
});

describe('bench end-to-end peak RSS', () => {
  it('is the child command alone, within 10% of the same child measured from outside', async () => {
    expect(ballast!.length).toBe(768 * MIB);
    const image = path.join(tmp.dir, 'bench.img');
    await writeSyntheticImage(image, 64, 65);
    const keyDir = path.join(tmp.dir, 'keys');
    fs.mkdirSync(keyDir, { mode: 0o700 });
    const watched = new Map<string, ReturnType<typeof watchPeak>>();
    const results = await measureEndToEnd({
      imagePath: image,
      keys: await writeBenchKeys(keyDir),
      threads: 2,
      imageBytes: 64 * MIB,
      workDir: tmp.dir,
      codecs: ['gzip'],
      ec2Layout: true,
      onSpawn: (pid, run) => watched.set(run, watchPeak(pid)),
    });
    for (const w of watched.values()) w.stop();
    expect([...watched.keys()]).toEqual([
      'bundle-image gzip:6',
      'unbundle gzip:6',
      'unbundle gzip:9 ec2-ami-tools layout',
    ]);
    expect(results.map(runLabel)).toEqual([...watched.keys()]);
    for (const r of results) {
      const run = runLabel(r);
      const external = watched.get(run)!.peak();
      expect(external, run).toBeGreaterThan(10 * MIB);
      expect(external, run).toBeLessThan(512 * MIB);
      const off = Math.abs(r.maxRssBytes - external) / external;
      expect(off, `${run}: reported ${r.maxRssBytes}, measured ${external}`).toBeLessThan(0.1);
    }
  }, 180_000);
});
