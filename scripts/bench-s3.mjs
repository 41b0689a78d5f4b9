#!/usr/bin/env node
// The S3 benchmark of issue 4 (upload/download rates, streaming vs two steps) in one run, against
// a radosgw it starts itself (scripts/start-radosgw.sh). The measuring code is TypeScript that
// uses the test proxy and server helpers, so it runs through vite-node (a vitest dependency).
// Usage: node scripts/bench-s3.mjs        (BENCH_S3_MIB=50 for a smaller image)
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const result = spawnSync(
  process.execPath,
  [path.join(root, 'node_modules/vite-node/vite-node.mjs'), path.join(root, 'test/integration/s3-bench.ts')],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
