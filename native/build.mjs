// Builds the optional N-API addon (native/build/Release/amibundle_native.node) at `npm install` time.
// On linux-x64 with glibc the package ships a prebuilt addon (prebuilds/, made by `npm pack`), so
// nothing is compiled when it loads. Never fails the install: without the addon amibundle uses its
// TypeScript fallback, so any problem is one warning line and exit 0. npm shows an install script's
// output only when the script fails, so the line also goes to the terminal (/dev/tty) when there is
// one; every command warns again when a large job runs without the addon. Uses local Node headers
// (nodedir) so nothing is downloaded. AMIBUNDLE_NATIVE_STRICT=1 (the prepack build) makes any
// problem exit 1 and ignores the prebuilt.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const strict = process.env.AMIBUNDLE_NATIVE_STRICT === '1';

function warn(reason) {
  const line = `amibundle: native addon not built (${reason}); using the slower TypeScript fallback`;
  console.warn(line);
  if (strict) process.exit(1);
  try {
    writeFileSync('/dev/tty', `${line}\n`);
  } catch {
    // No terminal (CI, a pipe): stderr above is all there is (npm --foreground-scripts shows it).
  }
  process.exit(0);
}

// The prebuilt is for x86-64 Linux with glibc; when it loads here there is nothing to build.
function prebuiltLoads() {
  const file = path.join(here, '..', 'prebuilds', 'linux-x64', 'amibundle.node');
  if (process.platform !== 'linux' || process.arch !== 'x64' || !existsSync(file)) return false;
  if (process.report?.getReport()?.header?.glibcVersionRuntime === undefined) return false;
  try {
    return typeof createRequire(import.meta.url)(file).dataExtents === 'function';
  } catch {
    return false;
  }
}

if (!strict && prebuiltLoads()) process.exit(0);

// npm sets npm_config_node_gyp for install scripts; otherwise use the copy bundled with npm.
function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const candidates = [
    path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(prefix, 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(
      path.dirname(process.execPath),
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ];
  return candidates.find((c) => existsSync(c));
}

// Headers of the running node: npm's nodedir setting, else the install prefix when it ships
// include/node (Debian's nodejs package does); node-gyp would otherwise try to download them.
function findNodeDir() {
  const configured = process.env.npm_config_nodedir;
  if (configured && existsSync(path.join(configured, 'include', 'node', 'node_api.h'))) return configured;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) return prefix;
  return undefined;
}

if (process.env.AMIBUNDLE_SKIP_NATIVE_BUILD === '1') warn('AMIBUNDLE_SKIP_NATIVE_BUILD=1');
if (process.platform === 'win32') warn('not supported on Windows');

const nodeGyp = findNodeGyp();
if (!nodeGyp) warn('node-gyp not found');
const nodeDir = findNodeDir();
if (!nodeDir) warn('Node.js headers not found; set npm nodedir');

const args = [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`];
const r = spawnSync(process.execPath, args, {
  cwd: here,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
});
if (r.error) warn(`node-gyp could not run: ${r.error.message}`);
if (r.status !== 0) {
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  // The full node-gyp log only on request; the first compiler/gyp error goes into the one line.
  if (process.env.AMIBUNDLE_NATIVE_VERBOSE === '1') console.warn(output);
  const lines = output.split('\n');
  const firstError = [/: (fatal )?error: /, /gyp ERR! stack Error: /, /\berror\b/i]
    .map((re) => lines.find((l) => re.test(l)))
    .find((l) => l !== undefined);
  const why = `node-gyp exited with ${r.status ?? r.signal}`;
  warn(firstError ? `${why}: ${firstError.trim().slice(0, 200)}` : why);
}
if (!existsSync(path.join(here, 'build', 'Release', 'amibundle_native.node')))
  warn('build produced no .node file');
