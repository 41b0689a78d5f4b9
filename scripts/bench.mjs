#!/usr/bin/env node
// npm run bench: amibundle against the reference pipelines on real ext4 images, in one run, with the
// targets of issue 3 marked PASS/MISS (information, not a test). Images are built once with
// scripts/make-bench-image.sh into /var/tmp/amibundle-bench/ and reused; everything else is
// written to a run directory there and removed at the end. The report goes to stdout, progress to
// stderr. Every process is measured from outside with GNU time (wall here, CPU and peak RSS of the
// largest process in the tree from wait4()), ours and the references alike.
//
// Restore is measured on two images (issue 14): the /usr/lib image and one built from /usr
// (binaries, headers, libraries). For each: amibundle's own gzip and zstd bundles, a bundle in the
// ec2-ami-tools layout (`tar -cS | gzip -9 | openssl enc`, one gzip member), and every --format,
// against the reference restore (`openssl enc -d | gunzip | tar -xS`, plus `qemu-img convert` for
// the disk formats). Options: --images lib,usr (which images; default both), --restore-only
// (skip the bundle-side runs, the growth runs and the stage table), --bin PATH (measure that copy
// of bin/amibundle.js, e.g. the installed one, instead of this checkout), --repeat N (rounds of the
// restore runs, each row's median and the median of the paired ratios reported; default 3).
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleImageArgs } from './lib/bundle-image-argv.mjs';
import { GNU_TIME, timeProcess } from './lib/gnu-time.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// --bin PATH measures another copy, e.g. the installed one (PREFIX/lib/node_modules/amibundle/bin/amibundle.js).
const binGiven = process.argv.indexOf('--bin');
const bin =
  binGiven >= 0 && process.argv[binGiven + 1]
    ? path.resolve(process.argv[binGiven + 1])
    : path.join(root, 'bin/amibundle.js');
const makeImage = path.join(root, 'scripts/make-bench-image.sh');
const imagesDir = '/var/tmp/amibundle-bench';
const MIB = 1024 * 1024;
const cpus = os.availableParallelism();
const started = Date.now();

function argValue(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const restoreOnly = process.argv.includes('--restore-only');
// Each restore (ours and the references) runs this many times and its median run is reported: on a
// shared 2-core machine one run of the reference restore varied by 20% (4.3 to 5.3 s). The restore
// suite runs them in rounds (restoreSuite).
const repeat = Number(argValue('--repeat', '3'));
if (!Number.isInteger(repeat) || repeat < 1)
  fail(`--repeat takes a positive integer (got ${argValue('--repeat')})`);
const imageChoice = argValue('--images', 'lib,usr')
  .split(',')
  .map((x) => x.trim())
  .filter(Boolean);
for (const x of imageChoice)
  if (x !== 'lib' && x !== 'usr') fail(`--images takes lib, usr or lib,usr (got ${x})`);
/** The disk formats of unbundle --format, with the qemu-img convert arguments that make the same. */
const FORMATS = [
  ['qcow2', ['-O', 'qcow2']],
  ['vmdk', ['-O', 'vmdk', '-o', 'subformat=streamOptimized']],
  ['vhd', ['-O', 'vpc', '-o', 'subformat=dynamic']],
];

const log = (msg) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}\n`);

function fail(msg) {
  process.stderr.write(`ERROR: ${msg}\n`);
  process.exit(1);
}

function have(tool) {
  return spawnSync('bash', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

function checkTools() {
  const needed = [
    ['tar', 'tar'],
    ['gzip', 'gzip'],
    ['gunzip', 'gzip'],
    ['pigz', 'pigz'],
    ['openssl', 'openssl'],
    ['split', 'coreutils'],
    ['sha1sum', 'coreutils'],
    ['mke2fs', 'e2fsprogs'],
    ['qemu-img', 'qemu-utils'],
    [GNU_TIME, 'time'],
  ];
  const missing = needed.filter(([tool]) => !have(tool));
  if (missing.length > 0)
    fail(
      `missing tools: ${missing.map(([t]) => t).join(', ')}; install them with: apt-get install -y --no-install-recommends ${[...new Set(missing.map(([, p]) => p))].join(' ')}`,
    );
  if (!fs.existsSync(makeImage)) fail(`${makeImage} not found: the benchmark images are built with it`);
  if (!fs.existsSync(bin)) fail(`--bin ${bin}: no such file; give the amibundle.js of the copy to measure`);
}

function build() {
  log('building dist/ (npm run build: tsc, then the command line bundle)...');
  const tsc = spawnSync(
    process.execPath,
    [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    { cwd: root, encoding: 'utf8' },
  );
  if (tsc.status !== 0) {
    if (!fs.existsSync(path.join(root, 'dist/cli/main.js')))
      fail(`the build failed:\n${tsc.stdout}${tsc.stderr}`);
    log(`WARNING: tsc reported errors; measuring what it emitted:\n${tsc.stdout}`);
  }
  const bundle = spawnSync(process.execPath, [path.join(root, 'scripts/bundle-cli.mjs')], {
    cwd: root,
    encoding: 'utf8',
  });
  if (bundle.status !== 0) fail(`bundling the command line failed:\n${bundle.stdout}${bundle.stderr}`);
}

/** Builds an image once (under a temporary name, so a failed build is never reused). */
function ensureImage(name, make) {
  const file = path.join(imagesDir, name);
  if (fs.existsSync(file)) {
    log(`reusing ${file}`);
    return file;
  }
  const temp = `${file}.building`;
  fs.rmSync(temp, { force: true });
  log(`building ${file}...`);
  make(temp);
  fs.renameSync(temp, file);
  return file;
}

function makeExt4(out, sizeMiB, fill, from) {
  execFileSync('bash', [makeImage, out, String(sizeMiB), String(fill), ...(from ? [from] : [])], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

function warm(file) {
  log(`reading ${path.basename(file)} into the page cache...`);
  readThrough(file);
}

/**
 * Reads files (or every file in a directory) to /dev/null, so that a run's input comes from the
 * page cache, as the report says. Needed right before each run, not once: a machine may page out
 * file pages that sat unread for seconds (this one runs DAMON's pageout of page cache unread for
 * 6 s), and a bundle made minutes earlier was then read from disk by one run and not another.
 */
function readThrough(...files) {
  const all = files.flatMap((f) =>
    fs.statSync(f).isDirectory() ? fs.readdirSync(f).map((n) => path.join(f, n)) : [f],
  );
  execFileSync('bash', ['-c', 'cat "$@" > /dev/null', 'warm', ...all]);
}

/**
 * Runs argv under GNU time (lib/gnu-time.mjs): wall seconds measured here, user/system CPU and
 * peak RSS (largest process of the tree, as wait4() reports it) from GNU time.
 */
function measure(argv, env = {}) {
  const t = timeProcess(argv, run, env);
  if (t.status !== 0)
    throw new Error(`${argv.slice(0, 3).join(' ')}… failed (exit ${t.status}): ${t.stderr.trim()}`);
  return { wall: t.wallHere, user: t.user, sys: t.sys, cpu: t.cpu, rss: t.rss, stdout: t.stdout };
}

function events(stdout) {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

// ---- the runs ----------------------------------------------------------------------------------

const results = new Map();
const record = (id, r) => {
  results.set(id, r);
  log(
    `${id}: ${r.wall.toFixed(2)} s, CPU ${r.cpu.toFixed(2)} s, peak RSS ${(r.rss / MIB).toFixed(1)} MiB${r.size ? `, ${r.size} bytes` : ''}`,
  );
  return r;
};

/**
 * Runs `once(i)` `repeat` times and records the run with the median wall time, with every run's
 * wall time beside it (`walls`), so the report can show the spread.
 */
function medianOf(id, once) {
  const runs = [];
  for (let i = 0; i < repeat; i++) runs.push(once(i));
  return recordMedian(id, runs);
}

/** Records the run with the median wall time (the lower one of an even count), with every wall time. */
function recordMedian(id, runs) {
  const median = [...runs].sort((a, b) => a.wall - b.wall)[Math.floor((runs.length - 1) / 2)];
  return record(id, { ...median, walls: runs.map((r) => r.wall) });
}

let run;
let keys;

function ours(id, image, extra = []) {
  const dest = fs.mkdtempSync(path.join(run, 'bundle-'));
  log(`${id}: amibundle bundle-image ${extra.join(' ')}`);
  readThrough(image);
  const r = measure([
    process.execPath,
    bin,
    ...bundleImageArgs(image, keys, dest, 'img'),
    '--json',
    ...extra,
  ]);
  const ev = events(r.stdout);
  const start = ev.find((e) => e.type === 'start');
  const done = ev.find((e) => e.type === 'done');
  return record(id, { ...r, stdout: undefined, size: done.bundledSize, dataBytes: start.dataBytes, dest });
}

function oursUnbundle(id, bundle, imageSize, extra = [], manifest = 'img.manifest.xml') {
  return medianOf(id, (i) => unbundleOnce(`${id} #${i + 1}`, bundle, imageSize, extra, manifest));
}

function unbundleOnce(label, bundle, imageSize, extra, manifest) {
  const out = fs.mkdtempSync(path.join(run, 'restore-'));
  log(`${label}: amibundle unbundle ${extra.join(' ')}`);
  readThrough(bundle.dest);
  try {
    const r = measure([
      process.execPath,
      bin,
      'unbundle',
      '-m',
      path.join(bundle.dest, manifest),
      '-k',
      keys.key,
      '-s',
      bundle.dest,
      '-d',
      out,
      '--json',
      ...extra,
    ]);
    const written = fs.readdirSync(out);
    if (written.length !== 1) throw new Error(`${label}: unbundle left ${written.join(', ')}`);
    if (extra.length === 0 && fs.statSync(path.join(out, written[0])).size !== imageSize)
      throw new Error(`${label}: restored image has the wrong size`);
    // Where the run's time went, as the command itself measured it (its JSON `done` event).
    const stages = events(r.stdout).find((e) => e.type === 'done')?.stages;
    return { ...r, stdout: undefined, dataBytes: bundle.dataBytes, stages };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

function dropBundle(r) {
  if (r?.dest) fs.rmSync(r.dest, { recursive: true, force: true });
}

// The reference pipelines need the AES key and IV on openssl's command line (`openssl enc` reads
// raw -K/-iv only from argv; -kfile would derive a different key from a passphrase). These are
// throw-away values used for the REFERENCE runs only; amibundle never puts key material in argv.
const refKey = crypto.randomBytes(16).toString('hex');
const refIv = crypto.randomBytes(16).toString('hex');

function reference(id, image, compressor, dataBytes) {
  const enc = path.join(run, `${id}.enc`);
  log(`${id}: tar -cS | ${compressor} | openssl enc -aes-128-cbc`);
  readThrough(image);
  const r = measure(
    [
      'bash',
      '-o',
      'pipefail',
      '-c',
      `tar -cS -f - -C "$DIR" "$NAME" | ${compressor} | openssl enc -aes-128-cbc -K "$K" -iv "$IV" > "$OUT"`,
    ],
    { DIR: path.dirname(image), NAME: path.basename(image), K: refKey, IV: refIv, OUT: enc },
  );
  return record(id, { ...r, stdout: undefined, size: fs.statSync(enc).size, dataBytes, enc });
}

/** What ec2-bundle-image does after the pipeline: split the file into 10 MiB parts, then hash each. */
function splitAndHash(id, ref) {
  const parts = fs.mkdtempSync(path.join(run, 'parts-'));
  log(`${id}: split -b 10MiB + sha1sum of every part`);
  try {
    const r = measure(
      [
        'bash',
        '-o',
        'pipefail',
        '-c',
        'split -b 10485760 -d -a 3 "$ENC" "$PARTS/p." && sha1sum "$PARTS"/p.* > /dev/null',
      ],
      {
        ENC: ref.enc,
        PARTS: parts,
      },
    );
    return record(id, { ...r, stdout: undefined });
  } finally {
    fs.rmSync(parts, { recursive: true, force: true });
  }
}

function referenceRestore(id, ref, image) {
  return medianOf(id, (i) => referenceRestoreOnce(`${id} #${i + 1}`, ref, image, false));
}

function referenceRestoreOnce(label, ref, image, keep) {
  const out = fs.mkdtempSync(path.join(run, 'rr-'));
  let kept = false;
  log(`${label}: openssl enc -d | gunzip | tar -xS`);
  readThrough(ref.enc);
  try {
    const r = measure(
      [
        'bash',
        '-o',
        'pipefail',
        '-c',
        'openssl enc -d -aes-128-cbc -K "$K" -iv "$IV" -in "$ENC" | gunzip | tar -xS -f - -C "$OUT"',
      ],
      { K: refKey, IV: refIv, ENC: ref.enc, OUT: out },
    );
    const restored = path.join(out, path.basename(image));
    if (fs.statSync(restored).size !== fs.statSync(image).size)
      throw new Error(`${label}: restored image has the wrong size`);
    kept = keep;
    return { ...r, stdout: undefined, dataBytes: ref.dataBytes, ...(keep ? { restored, out } : {}) };
  } finally {
    if (!kept) fs.rmSync(out, { recursive: true, force: true });
  }
}

/** The reference's second step for a disk format: qemu-img convert of the restored raw image. */
function referenceConvertOnce(label, raw, args, dataBytes) {
  const out = path.join(run, 'convert.out');
  log(`${label}: qemu-img convert ${args.join(' ')}`);
  readThrough(raw);
  try {
    const r = measure(['qemu-img', 'convert', '-f', 'raw', ...args, raw, out]);
    return { ...r, stdout: undefined, dataBytes };
  } finally {
    fs.rmSync(out, { force: true });
  }
}

/** SHA-1 of what `tar -cS` makes of the image (the digest an ec2-ami-tools manifest carries). */
function tarDigest(image) {
  return execFileSync(
    'bash',
    ['-o', 'pipefail', '-c', 'tar -cS -f - -C "$DIR" "$NAME" | sha1sum', 'digest'],
    { env: { ...process.env, DIR: path.dirname(image), NAME: path.basename(image) }, encoding: 'utf8' },
  ).split(' ')[0];
}

/** The ec2-ami-tools layout around R9's output: its parts, a manifest signed with the bench key. */
async function ec2LayoutBundle(label, image, r9) {
  log(`${label}: SHA-1 of the tar stream, parts and manifest around R9's output`);
  const { writeEc2LayoutBundle } = await import(
    pathToFileURL(path.join(root, 'dist/bench/ec2-layout-bundle.js')).href
  );
  const dest = fs.mkdtempSync(path.join(run, 'ec2-'));
  await writeEc2LayoutBundle({
    encryptedFile: r9.enc,
    keyHex: refKey,
    ivHex: refIv,
    tarDigest: tarDigest(image),
    imageName: path.basename(image),
    imageSize: fs.statSync(image).size,
    keyFile: keys.key,
    certFile: keys.cert,
    dir: dest,
  });
  return { dest, dataBytes: r9.dataBytes };
}

/** Per image tag: each round's runs by name (ours and the references), for the paired ratios. */
const restoreRounds = new Map();

/**
 * The restore runs of issue 14 on one image (`tag` tells the images apart in the run ids). Every
 * bundle is made first: our gzip and zstd bundles, R9 (the reference's input) and the
 * ec2-ami-tools layout around it. Then `repeat` rounds each run every restore once: ours of each
 * bundle and --format, the reference restore and its qemu-img converts. A burst of load from
 * elsewhere so falls on one round of every row, not on every run of one row; each row reports its
 * median run, and each ratio is the median of the rounds' own ratios (see restoreReport).
 */
async function restoreSuite(tag, image) {
  const id = (base) => `${base}${tag}`;
  const made = [];
  try {
    const def = ours(id('ours default'), image);
    made.push(def.dest);
    const zstd = ours(id('ours zstd'), image, ['--compress', 'zstd']);
    made.push(zstd.dest);
    const r9 = reference(id('R9'), image, 'gzip -9', def.dataBytes);
    made.push(r9.enc);
    const ec2 = await ec2LayoutBundle(id('ec2 layout'), image, r9);
    made.push(ec2.dest);
    const rounds = [];
    for (let i = 0; i < repeat; i++) rounds.push(restoreRound(tag, i, image, { def, zstd, ec2, r9 }));
    for (const name of Object.keys(rounds[0]))
      recordMedian(
        id(name),
        rounds.map((r) => r[name]),
      );
    restoreRounds.set(tag, rounds);
  } finally {
    for (const f of made) fs.rmSync(f, { recursive: true, force: true });
  }
}

/** One round of restoreSuite: every restore once, by name. */
function restoreRound(tag, i, image, { def, zstd, ec2, r9 }) {
  const size = fs.statSync(image).size;
  const label = (base) => `${base}${tag} #${i + 1}`;
  const ownManifest = 'img.manifest.xml';
  const round = {
    'ours unbundle': unbundleOnce(label('ours unbundle'), def, size, [], ownManifest),
    'ours unbundle zstd': unbundleOnce(label('ours unbundle zstd'), zstd, size, [], ownManifest),
    'ours unbundle ec2': unbundleOnce(
      label('ours unbundle ec2'),
      ec2,
      size,
      [],
      `${path.basename(image)}.manifest.xml`,
    ),
  };
  for (const [format] of FORMATS)
    round[`ours unbundle ${format}`] = unbundleOnce(
      label(`ours unbundle ${format}`),
      def,
      size,
      ['--format', format],
      ownManifest,
    );
  const rr = referenceRestoreOnce(label('Rr'), r9, image, true);
  try {
    round.Rr = { ...rr, restored: undefined, out: undefined };
    for (const [format, args] of FORMATS)
      round[`Rconv ${format}`] = referenceConvertOnce(
        label(`Rconv ${format}`),
        rr.restored,
        args,
        r9.dataBytes,
      );
  } finally {
    fs.rmSync(rr.out, { recursive: true, force: true });
  }
  return round;
}

// ---- the report --------------------------------------------------------------------------------

const mb = (bytes, s) => (bytes / 1e6 / s).toFixed(1);
const mib = (b) => `${(b / MIB).toFixed(1)} MiB`;

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (cells) =>
    cells
      .map((c, i) =>
        i === 0 || i === cells.length - 1 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]),
      )
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

function runRows(ids, labels, r9) {
  return ids
    .filter((id) => results.has(id))
    .map((id) => {
      const r = results.get(id);
      return [
        id,
        r.wall.toFixed(2),
        r.dataBytes ? mb(r.dataBytes, r.wall) : '',
        r.cpu.toFixed(2),
        `${Math.round((100 * r.cpu) / r.wall)}%`,
        mib(r.rss),
        r.size ?? '',
        r.size && r9?.size ? (r.size / r9.size).toFixed(4) : '',
        labels[id] ?? '',
      ];
    });
}

/** What was measured where: machine, tools, engines, images. */
function header(images) {
  const measured = `Measured: ${bin}${binGiven >= 0 ? '' : ' (this checkout; --bin PATH measures another copy, e.g. the installed one)'}`;
  const L = ['amibundle benchmark (npm run bench)', ''];
  L.push(
    `Machine: ${cpus} CPU(s) (${os.cpus()[0]?.model ?? '?'}), ${mib(os.totalmem())} RAM, Node ${process.version}; shared machine: load average at start ${images.loadStart.map((l) => l.toFixed(2)).join(' ')}, at end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  L.push(measured);
  L.push(`Tools: ${images.versions}`);
  L.push(`Native engines: ${images.engines}`);
  L.push(
    "Images (in /var/tmp/amibundle-bench, reused between runs). Every run's input (image, bundle, R9's file, Rr's image) is read into the page cache right before the run:",
  );
  for (const [label, file] of Object.entries(images.files)) {
    const st = fs.statSync(file);
    L.push(`  ${label.padEnd(18)} ${file}: ${mib(st.size)} apparent, ${mib(st.blocks * 512)} allocated`);
  }
  return L;
}

const restoreTags = [];

/** Issue 14's restore table and targets, one block per image. */
function restoreReport() {
  const L = [];
  const g = (id) => results.get(id);
  for (const tag of restoreTags) {
    const t = (base) => `${base}${tag}`;
    const rr = g(t('Rr'));
    if (!rr) continue;
    const labels = {
      [t('ours unbundle')]: 'amibundle unbundle, own gzip bundle (raw)',
      [t('ours unbundle zstd')]: 'amibundle unbundle, own zstd bundle (raw)',
      [t('ours unbundle ec2')]: 'amibundle unbundle, ec2-ami-tools layout (tar -cS | gzip -9 | openssl enc)',
      [t('Rr')]: 'openssl enc -d | gunzip | tar -xS (the reference restore)',
    };
    for (const [format] of FORMATS) {
      labels[t(`ours unbundle ${format}`)] = `amibundle unbundle --format ${format}, own gzip bundle`;
      labels[t(`Rconv ${format}`)] = `qemu-img convert to ${format} of Rr's raw image`;
    }
    L.push(
      '',
      `Restore, 1 GiB image${tag} (issue 14; ${repeat} rounds, each running every row once; a row shows its median run and every round's wall time):`,
    );
    const walls = (id) => (g(id)?.walls ?? []).map((w) => w.toFixed(2)).join(' ');
    L.push(
      ...table(
        ['run', 'wall s', 'MB/s', 'CPU s', 'CPU %', 'peak RSS', 'bytes', 'size/R9', 'runs (wall s)', 'what'],
        runRows(Object.keys(labels), labels).map((row) => [...row.slice(0, -1), walls(row[0]), row.at(-1)]),
      ),
    );
    const rows = [];
    const rounds = restoreRounds.get(tag) ?? [];
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
    // Each round's ratio pairs ours with the reference run beside it in time; the median of those.
    // Wall is what the targets name; CPU seconds (whole process tree) say the same on a busy machine.
    const line = (name, base, most, convert) => {
      const paired = rounds.filter((r) => r[base] && r.Rr && (!convert || r[convert]));
      const of = (r, key) => r[base][key] / (r.Rr[key] + (convert ? r[convert][key] : 0));
      const x = paired.length ? median(paired.map((r) => of(r, 'wall'))) : undefined;
      const c = paired.length ? median(paired.map((r) => of(r, 'cpu'))) : undefined;
      rows.push([
        name,
        x === undefined ? 'n/a' : x.toFixed(3),
        c === undefined ? 'n/a' : c.toFixed(3),
        paired.map((r) => of(r, 'wall').toFixed(3)).join(' '),
        `<= ${most}`,
        x === undefined ? 'n/a' : x <= most ? 'PASS' : 'MISS',
      ]);
    };
    line('own gzip / Rr', 'ours unbundle', 0.4);
    line('own zstd / Rr', 'ours unbundle zstd', 0.35);
    line('ec2-ami-tools layout / Rr', 'ours unbundle ec2', 0.45);
    line('--format raw / Rr', 'ours unbundle', 0.5);
    for (const [format] of FORMATS)
      line(`--format ${format} / (Rr + convert)`, `ours unbundle ${format}`, 0.5, `Rconv ${format}`);
    L.push(
      '',
      `Restore ratios${tag} (median of the ${rounds.length} rounds' ratios, each ours over the reference run in the same round; information, not a test):`,
    );
    L.push(...table(['ratio', 'wall', 'CPU', 'rounds (wall)', 'target (wall)', 'mark'], rows));
    L.push(...stageTable(tag, ['ours unbundle', 'ours unbundle zstd', 'ours unbundle ec2']));
  }
  return L;
}

/**
 * Where each restore's time went, from the `stages` of its JSON `done` event: a stage's busy
 * seconds are the wall time it had work under way (queued for a core or running), the rest of the
 * restore it waited; the threads' rows are CPU seconds. The stage busy for most of the restore is
 * the one the others waited on.
 */
function stageTable(tag, bases) {
  const runs = bases.map((b) => [b, results.get(`${b}${tag}`)]).filter(([, r]) => r?.stages);
  if (runs.length === 0) return [];
  const names = runs[0][1].stages.map((s) => s.stage);
  const rows = names.map((name) => [
    name,
    ...runs.map(([, r]) => {
      const s = r.stages.find((x) => x.stage === name);
      if (!s) return 'n/a';
      return s.busySeconds !== undefined
        ? `${s.busySeconds.toFixed(2)} busy${s.cpuSeconds !== undefined ? `, ${s.cpuSeconds.toFixed(2)} CPU` : ''}`
        : `${s.cpuSeconds.toFixed(2)} CPU`;
    }),
  ]);
  rows.push(['(process wall s)', ...runs.map(([, r]) => r.wall.toFixed(2))]);
  return [
    '',
    `Restore stages${tag}: seconds a stage had work under way (busy: queued or running; the rest of the run it waited), and the threads' CPU seconds`,
    ...table(
      ['stage', ...runs.map(([b]) => b.replace('ours unbundle', 'unbundle').trim() || 'unbundle')],
      rows,
    ),
  ];
}

function report(images) {
  const L = header(images);
  const g = (id) => results.get(id);
  const r9 = g('R9');
  L.push(
    '',
    'MB = 10^6 bytes; MB/s = image data (SEEK_DATA extents, as bundle-image reports them) per wall second; CPU = user+system',
    'of the whole process tree; peak RSS = the largest single process (GNU time / wait4). "size/R9" = bundle bytes / R9 bytes.',
    '',
    'Bundle, 1 GiB image:',
  );
  const labels = {
    'ours default': 'amibundle bundle-image (gzip -6, parallel)',
    'ours --fast': 'amibundle bundle-image --fast',
    'ours --best': 'amibundle bundle-image --best',
    'ours zstd': 'amibundle bundle-image --compress zstd (level 3)',
    R9: 'tar -cS | gzip -9 | openssl enc (ec2-bundle-image)',
    'R9+split': 'R9, then split into 10 MiB parts and sha1sum each',
    R6: 'tar -cS | gzip -6 | openssl enc',
    'R6+split': 'R6, then split + sha1sum',
    Rpigz9: `tar -cS | pigz -p${cpus} -9 | openssl enc`,
    Rpigz6: `tar -cS | pigz -p${cpus} -6 | openssl enc`,
    'ours unbundle': 'amibundle unbundle of the default bundle',
    'ours unbundle zstd': 'amibundle unbundle of the zstd bundle',
    Rr: 'openssl enc -d | gunzip | tar -xS (of R9)',
  };
  L.push(
    ...table(
      ['run', 'wall s', 'MB/s', 'CPU s', 'CPU %', 'peak RSS', 'bytes', 'size/R9', 'what'],
      runRows(
        [
          'ours default',
          'ours --fast',
          'ours --best',
          'ours zstd',
          'R9',
          'R9+split',
          'R6',
          'R6+split',
          'Rpigz9',
          'Rpigz6',
        ],
        labels,
        r9,
      ),
    ),
  );
  L.push('', 'Restore, 1 GiB image:');
  L.push(
    ...table(
      ['run', 'wall s', 'MB/s', 'CPU s', 'CPU %', 'peak RSS', 'bytes', 'size/R9', 'what'],
      runRows(['ours unbundle', 'ours unbundle zstd', 'Rr'], labels),
    ),
  );

  // Ratios the issues name.
  const ratio = (a, b) => (g(a) && g(b) ? g(a).wall / g(b).wall : undefined);
  const show = (x, digits = 3) => (x === undefined ? 'n/a' : x.toFixed(digits));
  L.push('', 'Ratios (wall time):');
  const ratios = [
    ['ours default / R9', ratio('ours default', 'R9')],
    [
      'ours default / (R9+split)',
      g('ours default') && g('R9+split') ? g('ours default').wall / g('R9+split').wall : undefined,
    ],
    ['ours default / R6 (issue 2)', ratio('ours default', 'R6')],
    ['ours default / Rpigz6', ratio('ours default', 'Rpigz6')],
    ['ours --fast / R9', ratio('ours --fast', 'R9')],
    ['ours --best / R9', ratio('ours --best', 'R9')],
    ['ours --best / Rpigz9', ratio('ours --best', 'Rpigz9')],
    ['ours zstd / R9', ratio('ours zstd', 'R9')],
    ['ours unbundle / Rr', ratio('ours unbundle', 'Rr')],
    ['ours unbundle zstd / Rr', ratio('ours unbundle zstd', 'Rr')],
  ];
  for (const [name, x] of ratios)
    L.push(`  ${name.padEnd(30)} ${show(x)}${x ? `  (${(1 / x).toFixed(2)}x faster)` : ''}`);

  // Peak RSS as the image grows.
  L.push(
    '',
    'Peak RSS as the image grows (default level; 8 GiB = the 1 GiB filesystem in an 8 GiB file, same data):',
  );
  const rssRows = [];
  for (const [size, b, u] of [
    ['1 GiB', 'ours default', 'ours unbundle'],
    ['4 GiB', 'ours default 4 GiB', 'ours unbundle 4 GiB'],
    ['8 GiB', 'ours default 8 GiB', 'ours unbundle 8 GiB'],
  ]) {
    rssRows.push([
      size,
      g(b) ? mib(g(b).rss) : 'n/a',
      g(u) ? mib(g(u).rss) : 'n/a',
      g(b)?.dataBytes ? mib(g(b).dataBytes) : 'n/a',
      g(b) ? g(b).wall.toFixed(2) : 'n/a',
      g(u) ? g(u).wall.toFixed(2) : 'n/a',
    ]);
  }
  L.push(...table(['image', 'bundle RSS', 'unbundle RSS', 'data', 'bundle s', 'unbundle s'], rssRows));
  const t10 = g('ours default 10 GiB/100 MiB');
  if (t10)
    L.push(
      '',
      `Cost follows data: 10 GiB image holding ${mib(t10.dataBytes)} of data bundled in ${t10.wall.toFixed(2)} s (${mb(t10.dataBytes, t10.wall)} MB/s of data), peak RSS ${mib(t10.rss)}`,
    );

  // Targets of issue 3.
  const targets = [];
  const target = (name, measured, ok) =>
    targets.push([name, measured ?? 'n/a', ok === undefined ? 'n/a' : ok ? 'PASS' : 'MISS']);
  const w = (id) => g(id)?.wall;
  const s = (id) => (g(id)?.size && r9?.size ? g(id).size / r9.size : undefined);
  const within = (x, f) => (x === undefined ? undefined : f(x));
  const speedup = (id) => (w(id) && w('R9') ? w('R9') / w(id) : undefined);
  // The three shapes of target: a speed-up over R9, a size relative to R9, a ratio to Rr.
  const measuredTarget = (name, x, show, ok) => target(name, within(x, show), within(x, ok));
  const faster = (name, id, times) =>
    measuredTarget(
      name,
      speedup(id),
      (x) => `R9 / ${x.toFixed(2)}`,
      (x) => x >= times,
    );
  const sized = (name, id, ok) => measuredTarget(name, s(id), (x) => `${x.toFixed(4)} x R9`, ok);
  const restore = (name, id, most) =>
    measuredTarget(
      name,
      ratio(id, 'Rr'),
      (x) => `${x.toFixed(3)} x Rr`,
      (x) => x <= most,
    );
  const beats = (name, id, ref) =>
    target(
      name,
      w(id) && w(ref) ? `${w(id).toFixed(2)} s vs ${w(ref).toFixed(2)} s` : undefined,
      w(id) && w(ref) ? w(id) < w(ref) : undefined,
    );
  faster('default: wall <= R9 / 8', 'ours default', 8);
  beats('default: wall < Rpigz6', 'ours default', 'Rpigz6');
  sized('default: size <= 1.02 x R9', 'ours default', (x) => x <= 1.02);
  faster('--fast: wall <= R9 / 12', 'ours --fast', 12);
  sized('--fast: size <= 1.15 x R9', 'ours --fast', (x) => x <= 1.15);
  faster('--best: wall <= R9 / 2.5', 'ours --best', 2.5);
  beats('--best: wall < Rpigz9', 'ours --best', 'Rpigz9');
  sized('--best: size within 1% of R9', 'ours --best', (x) => Math.abs(x - 1) <= 0.01);
  faster('zstd: wall <= R9 / 15', 'ours zstd', 15);
  sized('zstd: size <= R9', 'ours zstd', (x) => x <= 1);
  restore('zstd: restore <= 0.5 x Rr', 'ours unbundle zstd', 0.5);
  restore('unbundle default: wall <= 0.6 x Rr', 'ours unbundle', 0.6);
  const ourIds = [...results.keys()].filter((id) => id.startsWith('ours'));
  const maxRss = Math.max(...ourIds.map((id) => g(id).rss));
  target(
    'peak RSS <= 200 MiB (every bundle and unbundle run)',
    ourIds.length ? `max ${mib(maxRss)}` : undefined,
    ourIds.length ? maxRss <= 200 * MIB : undefined,
  );
  for (const [what, a, b] of [
    ['bundle', 'ours default', 'ours default 8 GiB'],
    ['unbundle', 'ours unbundle', 'ours unbundle 8 GiB'],
  ]) {
    const ok = g(a) && g(b) ? Math.abs(g(b).rss - g(a).rss) <= 0.1 * g(a).rss : undefined;
    target(
      `${what}: same peak RSS for 1 GiB and 8 GiB (within 10%)`,
      g(a) && g(b) ? `${mib(g(a).rss)} vs ${mib(g(b).rss)}` : undefined,
      ok,
    );
  }
  target(
    '10 GiB image with 100 MiB of data bundles in < 3 s',
    t10 ? `${t10.wall.toFixed(2)} s` : undefined,
    t10 ? t10.wall < 3 : undefined,
  );
  L.push('', 'Targets of issue 3 (information, not a test; R9 = without split, as the issue defines it):');
  L.push(...table(['target', 'measured', 'mark'], targets));
  return L;
}

// ---- main --------------------------------------------------------------------------------------

async function main() {
  checkTools();
  build();
  fs.mkdirSync(imagesDir, { recursive: true });
  const loadStart = os.loadavg();
  const versions = [
    execFileSync('tar', ['--version'], { encoding: 'utf8' }).split('\n')[0],
    execFileSync('bash', ['-c', 'gzip --version | head -1'], { encoding: 'utf8' }).trim(),
    execFileSync('bash', ['-c', 'pigz --version 2>&1'], { encoding: 'utf8' }).trim(),
    execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim(),
  ].join('; ');

  const img1 = ensureImage('bench-1g.img', (out) => makeExt4(out, 1024, 65));
  // The second restore image: /usr in path order (binaries, headers, then libraries).
  const imgUsr = imageChoice.includes('usr')
    ? ensureImage('bench-usr-1g.img', (out) => makeExt4(out, 1024, 65, '/usr'))
    : undefined;
  const full = !restoreOnly;
  const img4 = full ? ensureImage('bench-4g.img', (out) => makeExt4(out, 4096, 65)) : undefined;
  const img8 = full
    ? ensureImage('bench-8g.img', (out) => {
        execFileSync('cp', ['--sparse=always', img1, out]);
        execFileSync('truncate', ['-s', '8G', out]);
      })
    : undefined;
  // About 100 MiB of data in a 10 GiB file: a 160 MiB ext4, 60% full, with 9.84 GiB of holes after it
  // (make-bench-image.sh on a 10 GiB filesystem would add ~64 MiB of journal and metadata).
  const img10 = full
    ? ensureImage('bench-10g-100m.img', (out) => {
        makeExt4(out, 160, 60);
        execFileSync('truncate', ['-s', '10G', out]);
      })
    : undefined;
  const { loadAddon } = await import(pathToFileURL(path.join(root, 'dist/io/native.js')).href);
  const addon = loadAddon().addon;
  const engines = addon
    ? `gzip deflate ${addon.deflatePiece ? 'libdeflate' : 'zlib'}, parallel inflate ${addon.inflateEngine ?? 'none (zlib, sequential)'}, unmarked gzip ${addon.inflateStreamRun ? 'isa-l streaming' : 'zlib'}, restore AES ${addon.aesCbcDecryptUpdate ? 'in place on the threadpool' : 'node decipher'}`
    : `addon not built (${loadAddon().error}): TypeScript fallbacks`;
  const images = {
    loadStart,
    versions,
    engines,
    files: Object.fromEntries(
      [
        ['1 GiB, 65%', img1],
        ['/usr, 1 GiB, 65%', imgUsr],
        ['4 GiB, 65%', img4],
        ['8 GiB, same data', img8],
        ['10 GiB, 100 MiB', img10],
      ].filter(([, f]) => f),
    ),
  };

  run = fs.mkdtempSync(path.join(imagesDir, 'run-'));
  let failure;
  try {
    // Keys must not be readable by others; git does not keep file modes, so copy them privately.
    const keyDir = path.join(run, 'keys');
    fs.mkdirSync(keyDir, { mode: 0o700 });
    for (const f of ['sample-key.pem', 'sample-cert.pem', 'sample-ec2-cert.pem']) {
      fs.copyFileSync(path.join(root, 'samples', f), path.join(keyDir, f));
      fs.chmodSync(path.join(keyDir, f), 0o600);
    }
    keys = {
      key: path.join(keyDir, 'sample-key.pem'),
      cert: path.join(keyDir, 'sample-cert.pem'),
      ec2cert: path.join(keyDir, 'sample-ec2-cert.pem'),
    };
    const size1 = fs.statSync(img1).size;
    for (const [tag, image] of [
      [' [lib]', imageChoice.includes('lib') ? img1 : undefined],
      [' [usr]', imgUsr],
    ]) {
      if (!image) continue;
      warm(image);
      await restoreSuite(tag, image);
      restoreTags.push(tag);
    }
    if (!full) throw Object.assign(new Error('restore only'), { restoreOnly: true });

    warm(img1);
    const def = ours('ours default', img1);
    oursUnbundle('ours unbundle', def, size1);
    dropBundle(def);
    dropBundle(ours('ours --fast', img1, ['--fast']));
    dropBundle(ours('ours --best', img1, ['--best']));
    const zstd = ours('ours zstd', img1, ['--compress', 'zstd']);
    oursUnbundle('ours unbundle zstd', zstd, size1);
    dropBundle(zstd);

    const data1 = def.dataBytes;
    const r9 = reference('R9', img1, 'gzip -9', data1);
    const s9 = splitAndHash('split9', r9);
    record('R9+split', {
      wall: r9.wall + s9.wall,
      user: r9.user + s9.user,
      sys: r9.sys + s9.sys,
      cpu: r9.cpu + s9.cpu,
      rss: Math.max(r9.rss, s9.rss),
      size: r9.size,
      dataBytes: data1,
    });
    referenceRestore('Rr', r9, img1);
    fs.rmSync(r9.enc);
    const r6 = reference('R6', img1, 'gzip -6', data1);
    const s6 = splitAndHash('split6', r6);
    record('R6+split', {
      wall: r6.wall + s6.wall,
      user: r6.user + s6.user,
      sys: r6.sys + s6.sys,
      cpu: r6.cpu + s6.cpu,
      rss: Math.max(r6.rss, s6.rss),
      size: r6.size,
      dataBytes: data1,
    });
    fs.rmSync(r6.enc);
    fs.rmSync(reference('Rpigz9', img1, `pigz -p${cpus} -9`, data1).enc);
    fs.rmSync(reference('Rpigz6', img1, `pigz -p${cpus} -6`, data1).enc);

    for (const [label, image] of [
      ['4 GiB', img4],
      ['8 GiB', img8],
    ]) {
      warm(image);
      const b = ours(`ours default ${label}`, image);
      oursUnbundle(`ours unbundle ${label}`, b, fs.statSync(image).size);
      dropBundle(b);
    }
    warm(img10);
    dropBundle(ours('ours default 10 GiB/100 MiB', img10));
  } catch (err) {
    if (!err.restoreOnly) {
      failure = err;
      log(`FAILED: ${err.message}`);
    }
  }

  let stageLines = [];
  if (!failure && full) {
    // The per-stage table of `amibundle bench` on the same 1 GiB image.
    log('amibundle bench -i bench-1g.img --no-end-to-end ...');
    try {
      const r = spawnSync(
        process.execPath,
        [bin, 'bench', '-i', img1, '--no-end-to-end', '--tmp', run, '--json'],
        {
          encoding: 'utf8',
          maxBuffer: 64 * MIB,
        },
      );
      if (r.status !== 0) throw new Error(r.stderr.trim());
      const done = events(r.stdout).find((e) => e.type === 'done');
      const { formatReport } = await import(pathToFileURL(path.join(root, 'dist/bench/report.js')).href);
      stageLines = [
        '',
        'amibundle bench -i bench-1g.img --no-end-to-end (each stage alone, in memory):',
        ...formatReport(done.report),
      ];
    } catch (err) {
      failure = err;
      log(`FAILED: amibundle bench: ${err.message}`);
    }
  }

  const lines = full ? report(images) : header(images);
  for (const line of [...lines, ...restoreReport(), ...stageLines]) console.log(line);
  fs.rmSync(run, { recursive: true, force: true });
  log('done');
  if (failure) process.exitCode = 1;
}

await main();
