// The bench's stage timings count how long the process's threads waited for a CPU another
// process held (Linux schedstat): CPU % alone reads the same for a slow stage and a busy machine.
// Here a measured busy loop shares one core (taskset) with another busy loop, so the scheduler
// must make it wait for about half the time; alone on a core it cannot have waited more than it ran.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Timing } from '../../src/bench/measure.js';
import { projectRoot } from '../support/fixtures.js';

const measureJs = path.join(projectRoot, 'dist/bench/measure.js');

/** timed() of a 1.5 s busy loop in a process pinned to CPU 0; its Timing. */
function timedBusyLoopOnCpu0(): Promise<Timing> {
  const script = `import { timed } from ${JSON.stringify(measureJs)};
const t = await timed(async () => { const end = Date.now() + 1500; while (Date.now() < end); });
console.log(JSON.stringify(t));`;
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', '0', process.execPath, '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(JSON.parse(out) as Timing) : reject(new Error(`exit ${code}`)),
    );
  });
}

describe('timed() in the bench', () => {
  it('reports the time the work waited for a CPU held by another process', async () => {
    const hog = spawn('taskset', ['-c', '0', process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const t = await timedBusyLoopOnCpu0();
      expect(t.waitSeconds).toBeDefined();
      // Two busy loops on one core: the measured one is kept waiting for a large part of its wall time.
      expect(t.waitSeconds!).toBeGreaterThan(0.25 * t.seconds);
      expect(t.cpuSeconds).toBeLessThan(0.8 * t.seconds);
    } finally {
      hog.kill('SIGKILL');
    }
  }, 60_000);
});
