// One process measured from outside with GNU time, for the benchmark scripts (bench.mjs,
// bench-rescue.mjs): both time the same way, so their numbers mean the same. User and system CPU
// and the peak RSS (of the largest process in the tree, as wait4() reports it) come from GNU time;
// the wall time twice, as the caller wants it: GNU time's own (%e, 10 ms steps) and the one
// measured here around the spawn (finer, a few ms of spawning more).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const GNU_TIME = '/usr/bin/time';

/**
 * Runs argv under GNU time, its result file in `dir` (removed again), with `env` over the
 * environment; never throws for a failing command: the caller reads `status`.
 */
export function timeProcess(argv, dir, env = {}) {
  const resFile = path.join(dir, `time-${crypto.randomBytes(4).toString('hex')}`);
  const t0 = process.hrtime.bigint();
  const r = spawnSync(GNU_TIME, ['-f', '%e %U %S %M', '-o', resFile, '--', ...argv], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
  const wallHere = Number(process.hrtime.bigint() - t0) / 1e9;
  const timeOut = fs.existsSync(resFile) ? fs.readFileSync(resFile, 'utf8').trim().split('\n').pop() : '';
  fs.rmSync(resFile, { force: true });
  const [elapsed, user, sys, rssKiB] = timeOut.split(' ').map(Number);
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    wallHere,
    elapsed,
    user,
    sys,
    cpu: user + sys,
    rss: rssKiB * 1024,
  };
}
