#!/usr/bin/env node
// npm run bench:rescue: the times of the README's "Rescuing an archived image" commands, measured
// on the installed copy (npm pack, npm install -g into a temporary prefix, as users get it), each
// from outside with GNU time (wall, CPU, peak RSS of the largest process). One realistic image:
// /var/tmp/amibundle-bench/bench-usr-1g.img (1 GiB ext4 of /usr, built by make-bench-image.sh
// when missing), bundled once by the installed bundle-image with the samples/ test keys; the PV
// rows use the boot tests' cached Debian tree as a partitionless ext4. S3 is a real radosgw
// (scripts/start-radosgw.sh, stock configuration), EBS the EBS direct test server with no link
// modelled (it measures the tool, not a network). Every command's result is checked (qemu-img
// check/compare against the original image, the device read back, the snapshot read back), so a
// broken command cannot post a time. A row that cannot run here is skipped with one line saying
// why. Keys, bundles and outputs live in a private run directory under /var/tmp, removed at the
// end; the loop device is detached and the servers stopped, also on failure or Ctrl-C.
// The report (markdown) goes to stdout, progress to stderr.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { clearTimeout, setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { bundleImageArgs } from './lib/bundle-image-argv.mjs';
import { GNU_TIME, timeProcess } from './lib/gnu-time.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = '/var/tmp/amibundle-bench';
const bootCache = process.env.AMIBUNDLE_BOOT_CACHE ?? '/var/tmp/amibundle-boot-cache';
const MIB = 1024 * 1024;
const started = Date.now();
/** The fstab of an instance-store PV system (as the --hvm boot test writes it): root, ephemeral, swap. */
const PV_FSTAB =
  '/dev/sda1\t/\text4\tdefaults\t1 1\n/dev/sda2\t/mnt\text3\tdefaults\t0 0\n/dev/sda3\tswap\tswap\tdefaults\t0 0\nnone\t/proc\tproc\tdefaults\t0 0\n';

const log = (msg) =>
  process.stderr.write(`[bench:rescue ${((Date.now() - started) / 1000).toFixed(0)}s] ${msg}\n`);

function have(tool) {
  return spawnSync('bash', ['-c', 'command -v "$1"', 'have', tool], { stdio: 'ignore' }).status === 0;
}

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MIB, ...opts });
}

// ---- cleanup: every resource registers its undo; run on exit, failure and signals --------------

const undo = [];
async function cleanup() {
  while (undo.length > 0) {
    const fn = undo.pop();
    try {
      await fn();
    } catch (err) {
      log(`cleanup: ${err.message}`);
    }
  }
}
/** Runs one registered undo now (and no more at the end). */
async function release(fn) {
  const i = undo.indexOf(fn);
  if (i >= 0) undo.splice(i, 1);
  await fn();
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });

// ---- measuring ----------------------------------------------------------------------------------

let run;
const rows = [];
const skipped = [];

/**
 * Runs argv under GNU time (lib/gnu-time.mjs); throws unless it exits 0. Wall (GNU time's own),
 * CPU (user+sys) and peak RSS from GNU time.
 */
function measure(argv, env = {}) {
  const t = timeProcess(argv, run, env);
  if (t.status !== 0)
    throw new Error(
      `${argv.slice(1, 3).join(' ')}… failed (exit ${t.status}):\n${t.stdout.slice(-2000)}\n${t.stderr.slice(-2000)}`,
    );
  // A warning from Node or the SDK is something a user would see: show it, do not hide it.
  for (const line of t.stderr.split('\n').filter((l) => /warning/i.test(l)))
    log(`WARNING from ${argv.slice(1, 3).join(' ')}: ${line}`);
  return { wall: t.elapsed, cpu: t.cpu, rss: t.rss, stdout: t.stdout, stderr: t.stderr };
}

function record(command, r, image, output = '') {
  rows.push({ command, ...r, image, output });
  log(
    `${command}: ${r.wall.toFixed(2)} s wall, ${r.cpu.toFixed(2)} s CPU, ${(r.rss / MIB).toFixed(0)} MiB peak RSS`,
  );
}

function skip(what, why) {
  skipped.push(`${what}: skipped, ${why}`);
  log(`SKIPPED ${what}: ${why}`);
}

function events(stdout) {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

// ---- checks: an independent reader says the output is right ---------------------------------

const QEMU = { qcow2: 'qcow2', vmdk: 'vmdk' };

function checkClean(format, file) {
  const r = spawnSync('qemu-img', ['check', '-f', QEMU[format], file], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.includes('No errors were found'))
    throw new Error(`qemu-img check ${file}: ${r.stdout}${r.stderr}`);
}

function checkSame(rawFile, format, file) {
  const r = spawnSync('qemu-img', ['compare', '-f', 'raw', rawFile, '-F', format, file], {
    encoding: 'utf8',
  });
  if (r.status !== 0 || !r.stdout.includes('Images are identical'))
    throw new Error(`qemu-img compare ${rawFile} ${file}: ${r.stdout}${r.stderr}`);
}

/** An --hvm output: MBR with GRUB's boot code, partition 1 the image's own ext4 (same UUID). */
function checkHvmDisk(format, file, pvUuid) {
  checkClean(format, file);
  const raw = path.join(run, 'hvm-check.raw');
  try {
    sh('qemu-img', ['convert', '-f', QEMU[format], '-O', 'raw', file, raw]);
    const mbr = Buffer.alloc(512);
    const fd = fs.openSync(raw, 'r');
    fs.readSync(fd, mbr, 0, 512, 0);
    fs.closeSync(fd);
    if (!mbr.includes('GRUB')) throw new Error(`${file}: no GRUB boot code in the MBR`);
    const table = JSON.parse(sh('sfdisk', ['--json', raw])).partitiontable;
    if (table.label !== 'dos') throw new Error(`${file}: partition table ${table.label}, expected dos (MBR)`);
    const offset = table.partitions[0].start * 512;
    const fsInfo = sh('blkid', ['-p', '-o', 'export', '-O', String(offset), raw]);
    if (!fsInfo.includes('TYPE=ext4') || !fsInfo.includes(`UUID=${pvUuid}`))
      throw new Error(`${file}: partition 1 is not the image's ext4 (UUID ${pvUuid}): ${fsInfo}`);
  } finally {
    fs.rmSync(raw, { force: true });
  }
}

// ---- servers ------------------------------------------------------------------------------------

/**
 * Starts a helper that prints one line when ready and stops (with whatever it started) when its
 * stdin closes; that line and the function that stops it.
 */
async function startHelper(argv, what) {
  const child = spawn(argv[0], argv.slice(1), { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d.toString()));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const stop = async () => {
    child.stdin.end();
    let timer;
    const late = new Promise((resolve) => (timer = setTimeout(() => resolve('late'), 30_000)));
    if ((await Promise.race([exited, late])) === 'late') child.kill('SIGTERM');
    clearTimeout(timer);
    await exited;
  };
  undo.push(stop);
  const lines = readline.createInterface({ input: child.stdout });
  let timer;
  const line = await Promise.race([
    new Promise((resolve) => lines.once('line', resolve)),
    exited.then((code) => {
      throw new Error(`${what} exited (${code}) before it was ready: ${stderr.trim()}`);
    }),
    new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what}: not ready within 180 s: ${stderr.trim()}`)),
        180_000,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  return { line, stop };
}

async function startRadosgw() {
  const { line, stop } = await startHelper(['bash', path.join(root, 'scripts/start-radosgw.sh')], 'radosgw');
  const m = /^READY (\d+) (\S+) (\S+)$/.exec(line);
  if (!m) throw new Error(`radosgw: unexpected output '${line}'`);
  return { endpoint: `http://127.0.0.1:${m[1]}`, accessKey: m[2], secretKey: m[3], stop };
}

async function startEbsServer() {
  const { line, stop } = await startHelper(
    [
      process.execPath,
      path.join(root, 'node_modules/vite-node/vite-node.mjs'),
      path.join(root, 'scripts/ebs-test-server.mjs'),
    ],
    'the EBS test server',
  );
  return { ...JSON.parse(line), stop };
}

// ---- setup --------------------------------------------------------------------------------------

function ensureUsrImage() {
  const file = path.join(benchDir, 'bench-usr-1g.img');
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(benchDir, { recursive: true });
  const temp = `${file}.building`;
  fs.rmSync(temp, { force: true });
  log(`building ${file} (scripts/make-bench-image.sh, 1 GiB ext4 of /usr, 65% full)...`);
  execFileSync('bash', [path.join(root, 'scripts/make-bench-image.sh'), temp, '1024', '65', '/usr'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  fs.renameSync(temp, file);
  return file;
}

/** Builds dist/, packs the project as `prepack` would, installs the tarball into a prefix; the bin dir. */
function install() {
  log('building dist/, the prebuilt addon, npm pack...');
  sh('npm', ['run', '--silent', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  sh(process.execPath, [path.join(root, 'scripts/prebuild.mjs')], { cwd: root });
  const packed = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', run], { cwd: root });
  const tarball = path.join(run, JSON.parse(packed.slice(packed.indexOf('[')))[0].filename);
  const prefix = path.join(run, 'prefix');
  log(`npm install -g --prefix ${prefix} ${path.basename(tarball)}...`);
  sh(
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
    { cwd: run, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  fs.rmSync(tarball);
  return path.join(prefix, 'bin');
}

const mib = (b) => `${(b / MIB).toFixed(0)} MiB`;
const allocated = (file) => fs.statSync(file).blocks * 512;
const sizeLabel = (file) => {
  const size = fs.statSync(file).size;
  return `${size % 1024 ** 3 === 0 ? `${size / 1024 ** 3} GiB` : mib(size)} / ${mib(allocated(file))} data`;
};

// ---- the runs: one function per group of rows, each checking what it wrote -----------------------

const isRoot = process.getuid?.() === 0;
let version = '?';

/** Stops before anything is set up when a tool the runs or their checks need is missing. */
function checkTools() {
  const missing = [GNU_TIME, 'qemu-img', 'npm', 'mke2fs', 'sfdisk', 'blkid'].filter((t) => !have(t));
  if (missing.length > 0) {
    process.stderr.write(
      `ERROR: missing ${missing.join(', ')}: apt-get install -y --no-install-recommends time qemu-utils npm e2fsprogs fdisk util-linux\n`,
    );
    process.exit(1);
  }
}

/** The samples/ test keys, copied into the run directory with a user's modes; their paths. */
function copyKeys() {
  const keyDir = path.join(run, 'keys');
  fs.mkdirSync(keyDir, { mode: 0o700 });
  const keys = {};
  for (const [k, f] of [
    ['key', 'sample-key.pem'],
    ['cert', 'sample-cert.pem'],
    ['ec2cert', 'sample-ec2-cert.pem'],
  ]) {
    keys[k] = path.join(keyDir, f);
    fs.copyFileSync(path.join(root, 'samples', f), keys[k]);
    fs.chmodSync(keys[k], 0o600);
  }
  return keys;
}

/** Bundles `img` as `name` with the installed copy: the measure, where the bundle is, its size. */
function bundle(ctx, img, name) {
  const dest = path.join(run, `bundle-${name}`);
  fs.mkdirSync(dest);
  const r = measure([ctx.amibundle, ...bundleImageArgs(img, ctx.keys, dest, name)]);
  const manifest = path.join(dest, `${name}.manifest.xml`);
  if (!fs.existsSync(manifest)) throw new Error(`bundle-image wrote no ${manifest}`);
  const parts = fs.readdirSync(dest).filter((f) => f.includes('.part.'));
  const bytes = parts.reduce((sum, f) => sum + fs.statSync(path.join(dest, f)).size, 0);
  return { r, dest, manifest, parts: `bundle ${mib(bytes)} in ${parts.length} parts` };
}

/** unbundle of the local bundle `b` (its manifest and parts), with `rest` saying where to. */
function unbundleLocal(ctx, b, rest) {
  return measure([ctx.amibundle, 'unbundle', '-m', b.manifest, '-k', ctx.keys.key, '-s', b.dest, ...rest]);
}

const outDir = (label) => fs.mkdtempSync(path.join(run, `${label}-`));

function only(dir) {
  const files = fs.readdirSync(dir);
  if (files.length !== 1) throw new Error(`${dir} holds ${files.join(', ') || 'nothing'}, expected one file`);
  return path.join(dir, files[0]);
}

/** Installs the packed copy and bundles the /usr image once: what every row starts from. */
function setup(image) {
  const amibundle = path.join(install(), 'amibundle');
  version = sh(amibundle, ['--version']).trim();
  const ctx = { amibundle, keys: copyKeys(), image, usrLabel: `/usr ext4, ${sizeLabel(image)}` };
  log('reading the image into the page cache...');
  sh('bash', ['-c', 'cat "$1" > /dev/null', 'warm', image]);
  log('bundle-image (setup)...');
  const usr = bundle(ctx, image, 'usr.img');
  record('`bundle-image -i usr.img` (setup, not a rescue step)', usr.r, ctx.usrLabel, usr.parts);
  return { ...ctx, usr };
}

/** (a) S3 -> streamOptimized VMDK, after upload-bundle; radosgw left running for the EBS row. */
async function s3Rows(ctx) {
  if (!have('radosgw')) {
    skip('upload-bundle, unbundle --from s3://', 'radosgw is not installed here');
    return undefined;
  }
  log('starting radosgw (scripts/start-radosgw.sh)...');
  const s3 = await startRadosgw();
  const creds = ['--url', s3.endpoint, '--access-key', s3.accessKey, '--secret-key', s3.secretKey];
  const { amibundle, usr, usrLabel } = ctx;
  const up = measure([
    ...[amibundle, 'upload-bundle', '-b', 'rescue-bench/images', '-m', usr.manifest],
    ...['--acl', 'private', '--batch', ...creds],
  ]);
  record('`upload-bundle -b BUCKET/images -m usr.img.manifest.xml` (to radosgw)', up, usrLabel, usr.parts);
  const dest = outDir('vmdk');
  const r = measure([
    ...[amibundle, 'unbundle', '--from', 's3://rescue-bench/images/usr.img.manifest.xml'],
    ...['-k', ctx.keys.key, '-d', dest, '--format', 'vmdk', ...creds],
  ]);
  const out = only(dest);
  checkClean('vmdk', out);
  checkSame(ctx.image, 'vmdk', out);
  record('`unbundle --from s3://… --format vmdk` (from radosgw)', r, usrLabel, `vmdk ${mib(allocated(out))}`);
  fs.rmSync(dest, { recursive: true });
  return { ...s3, creds };
}

/** (b) local bundle -> qcow2, and -> VMDK (what (a) costs without S3: the deflate of every grain). */
function localFormatRows(ctx) {
  for (const format of ['qcow2', 'vmdk']) {
    const dest = outDir(format);
    const r = unbundleLocal(ctx, ctx.usr, ['-d', dest, '--format', format]);
    const out = only(dest);
    checkClean(format, out);
    checkSame(ctx.image, format, out);
    record(`\`unbundle -m … --format ${format}\``, r, ctx.usrLabel, `${format} ${mib(allocated(out))}`);
    fs.rmSync(dest, { recursive: true });
  }
}

/** (c) straight onto a device: a loop device over a sparse file (reads zeros, as a new EBS volume). */
async function deviceRow(ctx) {
  if (!isRoot) return skip('unbundle --device', 'needs root (losetup)');
  if (!have('losetup')) return skip('unbundle --device', 'losetup is not installed (util-linux)');
  const backing = path.join(run, 'device.raw');
  fs.writeFileSync(backing, '');
  fs.truncateSync(backing, fs.statSync(ctx.image).size);
  const dev = sh('losetup', ['--find', '--show', backing]).trim();
  const detach = () => {
    if (spawnSync('losetup', ['--detach', dev]).status !== 0) log(`WARNING: could not detach ${dev}`);
  };
  undo.push(detach);
  try {
    const r = unbundleLocal(ctx, ctx.usr, ['--device', dev, '--assume-zeroed', '--check', '--batch']);
    checkSame(ctx.image, 'raw', backing);
    record(
      '`unbundle -m … --device /dev/loopN --assume-zeroed --check --batch`',
      r,
      ctx.usrLabel,
      '1 GiB loop device over a sparse file, read back',
    );
  } finally {
    await release(detach);
    fs.rmSync(backing, { force: true });
  }
}

/** (e) -> EBS snapshot and AMI, from the S3 bundle when radosgw runs, else the local bundle. */
async function ebsRow(ctx, s3) {
  log('starting the EBS direct test server (vite-node scripts/ebs-test-server.mjs)...');
  const ebs = await startEbsServer();
  const env = { ...ebs.env, AMIBUNDLE_EBS_POLL_MS: '100' };
  const source = s3 ? ['s3://rescue-bench/images/usr.img.manifest.xml', ...s3.creds] : [ctx.usr.manifest];
  const r = measure(
    [
      ...[ctx.amibundle, 'to-ebs', ...source, '-k', ctx.keys.key, '--register', 'rescue-bench'],
      // The /usr image holds no boot loader: --force registers it anyway (the time is the same).
      ...['--force', '--endpoint-url', ebs.url, '--batch', '--json'],
    ],
    env,
  );
  const done = events(r.stdout).find((e) => e.type === 'done');
  if (!done?.snapshotId || !done?.imageId) throw new Error(`to-ebs: no snapshot and AMI in\n${r.stdout}`);
  const back = path.join(run, 'from-ebs.raw');
  sh(
    ctx.amibundle,
    ['from-ebs', done.snapshotId, '-o', back, '--endpoint-url', ebs.url, '--region', ebs.region],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  checkSame(ctx.image, 'raw', back);
  fs.rmSync(back);
  record(
    `\`to-ebs ${s3 ? 's3://…' : '….manifest.xml'} --register NAME --force\` (EBS test server, no link modelled)`,
    r,
    ctx.usrLabel,
    `${done.blocksSent} blocks sent, ${done.zeroBlocksSkipped} zero blocks skipped`,
  );
  await release(ebs.stop);
}

/** The boot tests' newest cached Debian tree, or undefined (with the row skipped) when the HVM rows cannot run. */
function debianTreeTar() {
  const tars = fs.existsSync(bootCache)
    ? fs
        .readdirSync(bootCache)
        .filter((f) => /^debian-.*\.tar$/.test(f))
        .map((f) => path.join(bootCache, f))
    : [];
  const what = 'unbundle --hvm, convert --hvm';
  if (!isRoot) return skip(what, 'they need root (loop mounts)');
  if (tars.length === 0)
    return skip(
      what,
      `no Debian tree in ${bootCache} (the boot tests build it: npx vitest run test/boot/hvm.test.ts)`,
    );
  if (!have('grub-install')) return skip(what, 'grub-install (grub-pc-bin) is not installed');
  return tars.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
}

/** A PV root (768 MiB ext4, no partition table) of the Debian tree in `tar`, with the PV fstab. */
function makePvImage(tar) {
  log(`making a PV image (768 MiB ext4, no partition table) of ${path.basename(tar)}...`);
  const tree = path.join(run, 'pv-tree');
  fs.mkdirSync(tree);
  sh('tar', [
    ...['--extract', '--file', tar, '--preserve-permissions', '--numeric-owner'],
    ...['--xattrs', '--xattrs-include=*', '--acls', '-C', tree],
  ]);
  fs.writeFileSync(path.join(tree, 'etc/fstab'), PV_FSTAB);
  const pv = path.join(run, 'pv.img');
  fs.writeFileSync(pv, '');
  fs.truncateSync(pv, 768 * MIB);
  sh('mkfs.ext4', ['-q', '-F', '-d', tree, pv]);
  fs.rmSync(tree, { recursive: true });
  const pvUuid = sh('blkid', ['-p', '-s', 'UUID', '-o', 'value', pv]).trim();
  return { pv, pvUuid, pvLabel: `Debian PV ext4, ${sizeLabel(pv)}` };
}

/** Throws unless an --hvm run reported the PV fstab entries it commented out. */
function checkFstabReported(what, stdout) {
  if (!/commented out \/mnt \(\/dev\/sda2\)/.test(stdout))
    throw new Error(`${what} did not report the PV fstab entries:\n${stdout}`);
}

/** (d) PV -> HVM on the boot tests' Debian system as a partitionless ext4. */
function hvmRows(ctx) {
  const tar = debianTreeTar();
  if (!tar) return;
  const { pv, pvUuid, pvLabel } = makePvImage(tar);
  const b = bundle(ctx, pv, 'pv.img');
  record('`bundle-image -i pv.img` (setup, not a rescue step)', b.r, pvLabel, b.parts);

  const dest = outDir('hvm-vmdk');
  const r = unbundleLocal(ctx, b, ['-d', dest, '--hvm', '--format', 'vmdk']);
  checkFstabReported('unbundle --hvm', r.stdout);
  const out = only(dest);
  checkHvmDisk('vmdk', out, pvUuid);
  record('`unbundle -m … --hvm --format vmdk`', r, pvLabel, `vmdk ${mib(allocated(out))}`);
  fs.rmSync(dest, { recursive: true });
  fs.rmSync(b.dest, { recursive: true });

  const disk = path.join(run, 'disk.qcow2');
  const c = measure([ctx.amibundle, 'convert', pv, disk, '--hvm']);
  checkFstabReported('convert --hvm', c.stdout);
  checkHvmDisk('qcow2', disk, pvUuid);
  record('`convert pv-root.img disk.qcow2 --hvm`', c, pvLabel, `qcow2 ${mib(allocated(disk))}`);
  fs.rmSync(disk);
  fs.rmSync(pv);
}

/** Every row in order; the S3 server lives from the S3 rows to the EBS row. */
async function runRows(image) {
  const ctx = setup(image);
  const s3 = await s3Rows(ctx);
  localFormatRows(ctx);
  await deviceRow(ctx);
  await ebsRow(ctx, s3);
  if (s3) await release(s3.stop);
  fs.rmSync(ctx.usr.dest, { recursive: true });
  hvmRows(ctx);
}

// ---- the report -----------------------------------------------------------------------------------

/** The markdown report on stdout: the machine and its load, the rows, the skips, a failure. */
function report({ loadStart, uptimeStart, failure }) {
  const loadEnd = os.loadavg();
  const cpu = os.cpus();
  const fmt = (l) => l.map((x) => x.toFixed(2)).join(' ');
  const out = [
    `${version}, installed from npm pack into a temporary prefix; node ${process.version}; ${os.availableParallelism()} cores (${cpu[0]?.model.trim() ?? '?'}), ${mib(os.totalmem())} RAM`,
    `load average at start ${fmt(loadStart)}, at end ${fmt(loadEnd)}`,
    `uptime at start: ${uptimeStart}`,
    `uptime at end:   ${sh('uptime', []).trim()}`,
    '',
    '| Command | Wall s | CPU s | Peak RSS | Image | Output |',
    '| --- | ---: | ---: | ---: | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.command} | ${r.wall.toFixed(1)} | ${r.cpu.toFixed(1)} | ${mib(r.rss)} | ${r.image} | ${r.output} |`,
    ),
    ...skipped.map((s) => `\n${s}`),
  ];
  console.log(out.join('\n'));
  if (failure) {
    console.log(
      `\nFAILED: ${failure.message.split('\n').filter(Boolean).slice(0, 2).join(' ')} (the rows above were measured before it)`,
    );
    process.exitCode = 1;
  }
}

async function main() {
  checkTools();
  const uptimeStart = sh('uptime', []).trim();
  const loadStart = os.loadavg();
  const image = ensureUsrImage();

  run = fs.mkdtempSync('/var/tmp/amibundle-rescue-');
  fs.chmodSync(run, 0o700);
  undo.push(() => fs.rmSync(run, { recursive: true, force: true }));
  let failure;
  try {
    await runRows(image);
  } catch (err) {
    failure = err;
    log(`FAILED: ${err.message}`);
  } finally {
    await cleanup();
  }
  report({ loadStart, uptimeStart, failure });
  log('done');
}

await main();
