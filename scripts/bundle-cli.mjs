#!/usr/bin/env node
// Part of `npm run build`, after tsc: bundles the command line (dist/cli/main.js and what it
// imports) into dist/cli-bundle/, which bin/*.js run. Node resolves, reads and compiles an ES module
// per file, and unbundle alone reached about 180 files (our ~100 and its dependencies'); bundled it
// loads 38, and a small restore ends about 30 ms sooner (171 ms against 198, installed copy).
// Each command stays a chunk of its own, loaded when run (esbuild splitting keeps the registry's
// dynamic imports), so `--version` does not load the restore. Left outside: the AWS SDK (large,
// already loaded only by the commands that call AWS) and zstd-napi (a native binding, found at run
// time by zstd-binding.ts). The library entry (dist/index.js) is not bundled.
//
// The chunks sit two directories below the package root, as every dist/<area>/<module>.js does,
// so the paths modules resolve from import.meta.url ('../../certs', '../../prebuilds/…',
// '../../bin/…') reach the same files from either.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'cli-bundle');

// CommonJS dependencies (node-forge, cli-progress) call require(); in an ES module it has to be made.
const banner =
  "import { createRequire as __amibundleRequire } from 'node:module';\n" +
  'const require = __amibundleRequire(import.meta.url);';

fs.rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: 'dist/cli/main.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['@aws-sdk/*', 'zstd-napi', 'zstd-napi/*'],
  banner: { js: banner },
  // No source maps: they would triple the bundle's size in every install, and the bundle is not
  // minified, so a --debug stack trace still reads; the library's dist/ keeps tsc's maps.
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
});
