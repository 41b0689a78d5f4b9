// The package as users get it: `npm pack` (with the linux-x64 prebuilt addon `prepack` makes),
// `npm install -g` of the tarball into a temporary prefix with install scripts off (a common
// hardened setting: nothing is compiled, zstd-napi's binding is absent), then the installed
// executables: doctor finds the native engines, gzip bundles round-trip byte for byte without
// zstd, a 10 GiB sparse image is bundled reading only its data, the command line starts from its
// bundle, and the published file list holds everything the runtime and the source build load.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesRoot, keysDir, projectRoot, tempDir } from '../support/fixtures.js';
import { packProject } from '../support/pack.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

let tmp: { dir: string; remove: () => void };
let tarball: string;
let prefix: string;
let installed: string;
let keys: { key: string; cert: string };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Bytes the command (and anything it ran) read through read(2) and friends: /proc/PID/io rchar. */
  rchar: number;
}

/**
 * Runs an installed executable under sh, which adds the counters of its reaped child to its own;
 * `wrapper` goes before it (e.g. strace and its options).
 */
function run(
  tool: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  wrapper: string[] = [],
): Promise<Run> {
  const counters = path.join(tmp.dir, `io-${crypto.randomBytes(4).toString('hex')}`);
  const child = spawn(
    'sh',
    [
      '-c',
      '"$@"; s=$?; cat /proc/$$/io > "$COUNTERS"; exit $s',
      'sh',
      ...wrapper,
      path.join(prefix, 'bin', tool),
      ...args,
    ],
    { cwd: tmp.dir, env: { ...process.env, ...env, COUNTERS: counters }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      const rchar = Number(/^rchar: (\d+)$/m.exec(fs.readFileSync(counters, 'utf8'))![1]);
      resolve({ code: code ?? -1, stdout, stderr, rchar });
    });
  });
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

beforeAll(async () => {
  tmp = tempDir('installed');
  tarball = await packProject(tmp.dir);
  prefix = path.join(tmp.dir, 'prefix');
  // From the tarball and npm's cache (filled by `npm ci`); the network only for what is not there.
  execFileSync(
    'npm',
    [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--prefer-offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      tarball,
    ],
    { cwd: tmp.dir, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  installed = path.join(prefix, 'lib', 'node_modules', 'amibundle');
  keys = { key: path.join(tmp.dir, 'pk.pem'), cert: path.join(tmp.dir, 'cert.pem') };
  const made = await run('amibundle', ['keygen', '-k', keys.key, '-c', keys.cert]);
  expect(made.code, made.stderr).toBe(0);
}, 900_000);

afterAll(() => tmp?.remove());

describe('the installed package', () => {
  it('nothing was compiled, zstd-napi has no binding, and doctor finds the native engines (the prebuilt)', async () => {
    expect(fs.existsSync(path.join(installed, 'native', 'build'))).toBe(false);
    expect(fs.existsSync(path.join(installed, 'prebuilds', 'linux-x64', 'amibundle.node'))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'node_modules', 'zstd-napi', 'build'))).toBe(false);
    const r = await run('amibundle', ['doctor', '--json']);
    const speed = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { type: string; name?: string; status?: string; message?: string })
      .find((e) => e.name === 'speed');
    expect(speed, r.stdout).toMatchObject({ status: 'ok' });
    expect(speed!.message).toContain('native addon with libdeflate');
  });

  it('bundle-image then unbundle (gzip, no zstd needed): the image comes back byte for byte', async () => {
    const image = path.join(tmp.dir, 'disk.img');
    const data = Buffer.concat([
      crypto.randomBytes(3 * MiB),
      Buffer.alloc(2 * MiB),
      Buffer.from('x'.repeat(MiB)),
    ]);
    fs.writeFileSync(image, data);
    const dest = path.join(tmp.dir, 'bundle');
    fs.mkdirSync(dest);
    const b = await run('ec2-bundle-image', [
      '-i',
      image,
      '-k',
      keys.key,
      '-c',
      keys.cert,
      '-u',
      '123456789012',
      '-r',
      'x86_64',
      '-d',
      dest,
      '--batch',
    ]);
    expect(b.stderr).toBe('');
    expect(b.code).toBe(0);
    const out = path.join(tmp.dir, 'restored');
    fs.mkdirSync(out);
    const u = await run('ec2-unbundle', [
      '-m',
      path.join(dest, 'disk.img.manifest.xml'),
      '-k',
      keys.key,
      '-s',
      dest,
      '-d',
      out,
    ]);
    expect(u.stderr).toBe('');
    expect(u.code).toBe(0);
    expect(sha256(path.join(out, 'disk.img'))).toBe(sha256(image));
  });

  it('starts from its bundle: a restore reads a few dozen of its JavaScript files, none outside dist/cli-bundle/', async () => {
    // Each ES module file costs a resolve, a read and a compile before any work: unbundled, a restore
    // read about 180 files (about 30 ms more of a small restore, here). strace lists what it opened.
    const bundle = path.join(fixturesRoot, 'a-tiny', 'bundle');
    const out = path.join(tmp.dir, 'tiny-restored');
    fs.mkdirSync(out);
    const trace = path.join(tmp.dir, 'opens.txt');
    const r = await run(
      'amibundle',
      [
        'unbundle',
        '-m',
        path.join(bundle, 'tiny.img.manifest.xml'),
        '-s',
        bundle,
        '-k',
        path.join(keysDir, 'user-key.pem'),
        '-d',
        out,
      ],
      {},
      ['strace', '-f', '-q', '-e', 'trace=open,openat', '-o', trace],
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(fs.readdirSync(out)).toEqual(['tiny.img']);
    const opened = new Set(
      [...fs.readFileSync(trace, 'utf8').matchAll(/open(?:at)?\(.*?"([^"]+\.[cm]?js)".*\) = \d+$/gm)]
        .map((m) => path.resolve(tmp.dir, m[1]!))
        .filter((f) => f.startsWith(installed + path.sep))
        .map((f) => path.relative(installed, f)),
    );
    expect(opened.has(path.join('dist', 'cli-bundle', 'main.js')), [...opened].join(' ')).toBe(true);
    expect(
      [...opened].filter((f) => f.startsWith('dist') && !f.startsWith(path.join('dist', 'cli-bundle'))),
    ).toEqual([]);
    expect(opened.size, [...opened].join(' ')).toBeLessThanOrEqual(50);
  });

  it('zstd without its binding: one line naming the fix, exit 254, nothing written', async () => {
    const image = path.join(tmp.dir, 'small.img');
    fs.writeFileSync(image, crypto.randomBytes(MiB));
    const dest = path.join(tmp.dir, 'zstd-bundle');
    fs.mkdirSync(dest);
    const r = await run('amibundle', [
      'bundle-image',
      '-i',
      image,
      '-k',
      keys.key,
      '-c',
      keys.cert,
      '-u',
      '123456789012',
      '-r',
      'x86_64',
      '-d',
      dest,
      '--batch',
      '--compress',
      'zstd',
    ]);
    expect(r.code).toBe(254);
    const errors = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('WARNING: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /^ERROR: zstd is not available: zstd-napi's native binding did not load .*npm rebuild zstd-napi/,
    );
    expect(fs.readdirSync(dest)).toEqual([]);
  });

  it('a 10 GiB sparse image holding 100 MiB of data is bundled reading only its data', async () => {
    const image = path.join(tmp.dir, 'sparse.img');
    const fd = fs.openSync(image, 'w');
    fs.ftruncateSync(fd, 10 * GiB);
    const piece = crypto.randomBytes(10 * MiB);
    for (let i = 0; i < 10; i++) fs.writeSync(fd, piece, 0, piece.length, i * GiB + 4096 * i);
    fs.closeSync(fd);
    const dest = path.join(tmp.dir, 'sparse-bundle');
    fs.mkdirSync(dest);
    const r = await run('ec2-bundle-image', [
      '-i',
      image,
      '-k',
      keys.key,
      '-c',
      keys.cert,
      '-u',
      '123456789012',
      '-r',
      'x86_64',
      '-d',
      dest,
      '--batch',
    ]);
    expect(r.code, r.stderr).toBe(0);
    // 100 MiB of data plus Node's own files; the fallback would read all 10 GiB.
    expect(r.rchar).toBeGreaterThan(100 * MiB);
    expect(r.rchar).toBeLessThan(400 * MiB);
    fs.rmSync(dest, { recursive: true });
    fs.rmSync(image);
  });

  it('without the addon, a large job says so in one warning line; a small one does not', async () => {
    const image = path.join(tmp.dir, 'holes.img');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 1536 * MiB);
    fs.writeFileSync(image, crypto.randomBytes(4096), { flag: 'r+' });
    const args = (dest: string): string[] => [
      '-i',
      image,
      '-k',
      keys.key,
      '-c',
      keys.cert,
      '-u',
      '123456789012',
      '-r',
      'x86_64',
      '-d',
      dest,
      '--batch',
    ];
    const slow = path.join(tmp.dir, 'slow');
    fs.mkdirSync(slow);
    const r = await run('ec2-bundle-image', args(slow), { AMIBUNDLE_NO_NATIVE: '1' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      "WARNING: running without amibundle's native addon (AMIBUNDLE_NO_NATIVE=1): this 1.5 GiB job uses the TypeScript and zlib fallbacks, several times slower; 'amibundle doctor' says how to fix it",
    ]);
    const fast = path.join(tmp.dir, 'fast');
    fs.mkdirSync(fast);
    const n = await run('ec2-bundle-image', args(fast));
    expect(n.code, n.stderr).toBe(0);
    expect(n.stderr).toBe('');
  });
});

describe('the published file list', () => {
  it('holds dist/, bin/, the prebuilt addon, and every source and header the addon build reads', async () => {
    const listed = new Set(
      execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map((f) => f.replace(/^package\//, '')),
    );
    const needed: string[] = [
      'package.json',
      'prebuilds/linux-x64/amibundle.node',
      'native/build.mjs',
      'native/binding.gyp',
    ];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(path.join(projectRoot, dir), { withFileTypes: true })) {
        const rel = path.posix.join(dir, e.name);
        if (e.isDirectory()) walk(rel);
        else if (rel.endsWith('.js')) needed.push(rel);
      }
    };
    walk('dist');
    walk('bin');
    // What node-gyp compiles and everything those files include from native/.
    const gyp = fs.readFileSync(path.join(projectRoot, 'native', 'binding.gyp'), 'utf8');
    const sources = [...gyp.matchAll(/"([\w-]+\.c)"/g)].map((m) => m[1]!);
    expect(sources.length).toBeGreaterThan(0);
    const seen = new Set<string>();
    const follow = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      needed.push(`native/${file}`);
      const text = fs.readFileSync(path.join(projectRoot, 'native', file), 'utf8');
      for (const m of text.matchAll(/^#include "([\w-]+\.h)"/gm)) follow(m[1]!);
    };
    sources.forEach(follow);
    expect([...seen].some((f) => f.endsWith('.h'))).toBe(true);
    expect(needed.filter((f) => !listed.has(f))).toEqual([]);
  });
});
