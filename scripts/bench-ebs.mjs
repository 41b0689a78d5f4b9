#!/usr/bin/env node
// The EBS benchmark of issue 15 (to-ebs and from-ebs through a modelled link, against the EBS
// direct test server). The measuring code is TypeScript using the test server and proxy, so it
// runs through vite-node (a vitest dependency); the CLI it drives is dist/, built first.
// Usage: npm run bench:ebs      (BENCH_EBS_MIB=512, BENCH_EBS_MIB_PER_CONN=1, BENCH_EBS_CONCURRENCY=16)
//        npm run bench:ebs -- --bin PREFIX/lib/node_modules/amibundle/bin   (measure an installed copy)
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const at = process.argv.indexOf('--bin');
const binDir = at >= 0 ? process.argv[at + 1] : undefined;
if (at >= 0 && (!binDir || !existsSync(path.join(binDir, 'amibundle.js')))) {
  process.stderr.write(
    `ERROR: --bin takes the bin/ directory of an amibundle copy (no amibundle.js in ${binDir ?? '(nothing)'})\n`,
  );
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  [path.join(root, 'node_modules/vite-node/vite-node.mjs'), path.join(root, 'test/integration/ebs-bench.ts')],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...(binDir ? { BENCH_EBS_BIN: path.resolve(binDir) } : {}) },
  },
);
process.exit(result.status ?? 1);
