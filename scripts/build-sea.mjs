#!/usr/bin/env node
// npm run build:sea: dist/amibundle-linux-x64, one file holding Node, amibundle and its native addon
// (Node 20's single executable applications). esbuild bundles dist/cli/sea-main.js and everything it
// imports into one CommonJS file; Node turns it into a blob with the assets (the prebuilt addon,
// package.json for the version, the shipped EC2 certificates); postject injects the blob into a copy
// of this node binary. zstd-napi stays out (its binding is a separate native file): zstd bundles
// need the npm install, gzip (what EC2 reads) works everywhere.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = path.join(root, 'dist', 'sea');
const output = path.join(root, 'dist', 'amibundle-linux-x64');
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const addon = path.join(root, 'prebuilds', 'linux-x64', 'amibundle.node');
if (!fs.existsSync(addon)) throw new Error(`${addon} is missing: run node scripts/prebuild.mjs first`);

// Asset name -> [file in the private directory, source file].
const assets = {
  addon: ['prebuilds/linux-x64/amibundle.node', addon],
  'package.json': ['package.json', null],
};
for (const cert of fs.readdirSync(path.join(root, 'certs')).filter((f) => f.endsWith('.pem')))
  assets[`certs/${cert}`] = [`certs/${cert}`, path.join(root, 'certs', cert)];

fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });
// Only what the program reads of package.json: its version.
const versionFile = path.join(work, 'package.json');
fs.writeFileSync(versionFile, JSON.stringify({ name: pkg.name, version: pkg.version }));
assets['package.json'][1] = versionFile;

// Runs before any module: writes the assets into a private directory laid out like the package and
// points import.meta.url there (dist/x/y.js: '../../certs' resolves, and version.ts finds package.json
// upward).
const banner = `
const __amibundleSeaRoot = (() => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const sea = require('node:sea');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amibundle-sea-'));
  fs.chmodSync(dir, 0o700);
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [name, file] of Object.entries(${JSON.stringify(Object.fromEntries(Object.entries(assets).map(([k, v]) => [k, v[0]])))})) {
    const target = path.join(dir, file);
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
    fs.writeFileSync(target, new Uint8Array(sea.getAsset(name)), { mode: 0o600 });
  }
  return dir;
})();
globalThis.__amibundleSeaRoot = __amibundleSeaRoot;
const __amibundleMetaUrl = require('node:url').pathToFileURL(require('node:path').join(__amibundleSeaRoot, 'dist', 'x', 'y.js')).href;
`;

fs.mkdirSync(path.join(work, 'dist'), { recursive: true });
await build({
  entryPoints: [path.join(root, 'dist', 'cli', 'sea-main.js')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  outfile: path.join(work, 'amibundle.cjs'),
  external: ['zstd-napi', 'zstd-napi/*'],
  define: { 'import.meta.url': '__amibundleMetaUrl' },
  banner: { js: banner },
  logLevel: 'warning',
});

const config = {
  main: path.join(work, 'amibundle.cjs'),
  output: path.join(work, 'amibundle.blob'),
  disableExperimentalSEAWarning: true,
  useCodeCache: false,
  assets: Object.fromEntries(Object.entries(assets).map(([k, v]) => [k, v[1]])),
};
fs.writeFileSync(path.join(work, 'sea-config.json'), JSON.stringify(config, null, 2));
execFileSync(process.execPath, ['--experimental-sea-config', path.join(work, 'sea-config.json')], {
  stdio: 'inherit',
});

fs.rmSync(output, { force: true });
fs.copyFileSync(process.execPath, output);
fs.chmodSync(output, 0o755);
execFileSync(
  process.execPath,
  [
    path.join(root, 'node_modules', 'postject', 'dist', 'cli.js'),
    output,
    'NODE_SEA_BLOB',
    config.output,
    '--sentinel-fuse',
    FUSE,
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
console.log(`${path.relative(root, output)} (${(fs.statSync(output).size / 2 ** 20).toFixed(0)} MiB)`);
