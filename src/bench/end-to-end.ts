// End-to-end runs: `amibundle bundle-image` and `amibundle unbundle` of the whole image as child
// processes, as a user runs them, and `unbundle` of a bundle in the ec2-ami-tools layout made
// from the same image with the system's tar, gzip and openssl (the bundles people rescue). Wall
// time is measured here; CPU time and peak RSS are what each child reports about itself in the
// `resources` field of its JSON `done` event: its own peak (VmHWM, io/peak-rss.ts), not
// getrusage's, which would carry this large process's size through fork and exec. Every restored
// image is hashed and compared with the image itself, so a row only exists for a correct restore.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { planImage } from '../bundle/image-plan.js';
import { LEVEL_RANGE, type CompressionCodec } from '../codec/compression.js';
import { AmiError } from '../errors.js';
import { onPath } from '../io/run-tool.js';
import type { BenchKeys } from './bench-keys.js';
import { EC2_LAYOUT_TOOLS, makeEc2LayoutBundle } from './ec2-layout-bundle.js';
import { mbPerSecond } from './measure.js';
import { runLabel, type EndToEndResult } from './report.js';

/** Same relative path from src/bench (tests) and dist/bench (the installed CLI). */
export const BENCH_CLI = fileURLToPath(new URL('../../bin/amibundle.js', import.meta.url));
const NAME = 'bench';

export interface EndToEndOptions {
  readonly imagePath: string;
  readonly imageBytes: number;
  readonly workDir: string;
  readonly keys: BenchKeys;
  readonly codecs: readonly CompressionCodec[];
  readonly threads: number;
  /** Also restore a bundle in the ec2-ami-tools layout (needs tar, gzip and openssl). */
  readonly ec2Layout?: boolean;
  readonly signal?: AbortSignal;
  readonly onResult?: (r: EndToEndResult) => void;
  readonly onProgress?: (line: string) => void;
  /** Called with one line when a row cannot be measured here (a tool is missing). */
  readonly onSkip?: (line: string) => void;
  /** Called with each child's process id as it starts, and the run's label (report.ts runLabel). */
  readonly onSpawn?: (pid: number, run: string) => void;
}

interface ChildRun {
  readonly seconds: number;
  readonly events: readonly Record<string, unknown>[];
}

interface Resources {
  readonly maxRssBytes: number;
  readonly userSeconds: number;
  readonly systemSeconds: number;
}

function runCli(
  args: readonly string[],
  label: string,
  signal?: AbortSignal,
  onSpawn?: EndToEndOptions['onSpawn'],
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [BENCH_CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    if (child.pid !== undefined) onSpawn?.(child.pid, label);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) {
        const why = stderr.trim().split('\n').pop() ?? `exit code ${code}`;
        reject(new AmiError(`bench: amibundle ${args[0]} failed (exit ${code}): ${why}`));
        return;
      }
      const events = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ seconds, events });
    });
  });
}

function event(run: ChildRun, type: string, command: string): Record<string, unknown> {
  const e = run.events.find((ev) => ev.type === type && ev.command === command);
  if (!e) throw new AmiError(`bench: amibundle ${command} printed no '${type}' event`);
  return e;
}

function num(e: Record<string, unknown>, key: string): number {
  const v = e[key];
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new AmiError(`bench: the '${String(e.type)}' event has no numeric '${key}'`);
  return v;
}

function resources(done: Record<string, unknown>): Resources {
  const r = done.resources;
  if (typeof r !== 'object' || r === null)
    throw new AmiError(
      `bench: amibundle ${String(done.command)} did not report its resources; rebuild (npm run build)`,
    );
  const rec = r as Record<string, unknown>;
  return {
    maxRssBytes: num(rec, 'maxRssBytes'),
    userSeconds: num(rec, 'userSeconds'),
    systemSeconds: num(rec, 'systemSeconds'),
  };
}

/** SHA-1 (hex) of a whole file, holes read as zeros. */
async function sha1File(file: string): Promise<string> {
  const hash = crypto.createHash('sha1');
  await pipeline(fs.createReadStream(file, { highWaterMark: 1024 * 1024 }), hash);
  return hash.digest('hex');
}

/** The restored image's SHA-1, after checking that it is the image's own. */
async function checkRestored(restored: string, imageSha1: string, imageBytes: number): Promise<string> {
  const st = await fs.promises.stat(restored);
  if (st.size !== imageBytes)
    throw new AmiError(`bench: the restored image is ${st.size} bytes, not ${imageBytes}`);
  const digest = await sha1File(restored);
  if (digest !== imageSha1)
    throw new AmiError(`bench: the restored image's SHA-1 is ${digest}, the image's is ${imageSha1}`);
  return digest;
}

/** Where unbundle says it wrote the image (its `done` event), which must be inside `restoreDir`. */
function restoredPath(done: Record<string, unknown>, restoreDir: string): string {
  const image = done.image;
  if (typeof image !== 'string' || path.dirname(path.resolve(image)) !== path.resolve(restoreDir))
    throw new AmiError(`bench: amibundle unbundle did not report an image under ${restoreDir}`);
  return image;
}

/** Bytes of data in the image as bundle-image finds them (SEEK_DATA/SEEK_HOLE). */
async function imageDataBytes(image: string): Promise<number> {
  const handle = await fs.promises.open(image, 'r');
  try {
    return (await planImage(handle, image, 'fs')).dataBytes;
  } finally {
    await handle.close();
  }
}

type RunKind = Pick<EndToEndResult, 'command' | 'codec' | 'level' | 'layout'>;

function result(
  kind: RunKind,
  run: ChildRun,
  res: Resources,
  fields: Pick<EndToEndResult, 'imageBytes' | 'dataBytes' | 'bundledBytes' | 'parts' | 'restoredSha1'>,
): EndToEndResult {
  const cpu = res.userSeconds + res.systemSeconds;
  return {
    ...kind,
    seconds: run.seconds,
    userSeconds: res.userSeconds,
    systemSeconds: res.systemSeconds,
    cpuPercent: run.seconds > 0 ? (100 * cpu) / run.seconds : 0,
    maxRssBytes: res.maxRssBytes,
    ...fields,
    dataMbPerSecond: mbPerSecond(fields.dataBytes, run.seconds),
  };
}

/** The `amibundle` arguments of the end-to-end bundle run (after the CLI path). */
export function bundleImageArgs(
  opts: Pick<EndToEndOptions, 'imagePath' | 'keys' | 'threads'>,
  codec: CompressionCodec,
  level: number,
  bundleDir: string,
): string[] {
  const k = opts.keys;
  return [
    'bundle-image',
    '-i',
    opts.imagePath,
    '-k',
    k.keyFile,
    '-c',
    k.certFile,
    '--ec2cert',
    k.certFile,
    '-u',
    '123456789012',
    '-r',
    'x86_64',
    '-d',
    bundleDir,
    '-p',
    NAME,
    '--compress',
    `${codec}:${level}`,
    '--threads',
    String(opts.threads),
    '--batch',
    '--json',
  ];
}

/** The `amibundle` arguments of the end-to-end restore of a bundle made by bundleImageArgs(). */
export function unbundleArgs(
  opts: Pick<EndToEndOptions, 'keys'>,
  bundleDir: string,
  restoreDir: string,
  manifest = path.join(bundleDir, `${NAME}.manifest.xml`),
): string[] {
  return ['unbundle', '-m', manifest, '-k', opts.keys.keyFile, '-s', bundleDir, '-d', restoreDir, '--json'];
}

export async function measureEndToEnd(opts: EndToEndOptions): Promise<EndToEndResult[]> {
  const results: EndToEndResult[] = [];
  const add = (r: EndToEndResult): void => {
    results.push(r);
    opts.onResult?.(r);
  };
  let imageSha1: string | undefined;
  const restoredSha1 = async (restored: string): Promise<string> => {
    imageSha1 ??= await sha1File(opts.imagePath);
    return checkRestored(restored, imageSha1, opts.imageBytes);
  };
  for (const codec of opts.codecs) {
    const level = LEVEL_RANGE[codec].default;
    const bundleDir = await fs.promises.mkdtemp(path.join(opts.workDir, `bundle-${codec}-`));
    const restoreDir = await fs.promises.mkdtemp(path.join(opts.workDir, `restore-${codec}-`));
    try {
      const bundling: RunKind = { command: 'bundle-image', codec, level, layout: 'amibundle' };
      opts.onProgress?.(`Running amibundle bundle-image --compress ${codec}:${level} on the whole image...`);
      const b = await runCli(
        bundleImageArgs(opts, codec, level, bundleDir),
        runLabel(bundling),
        opts.signal,
        opts.onSpawn,
      );
      const start = event(b, 'start', 'bundle-image');
      const done = event(b, 'done', 'bundle-image');
      const dataBytes = num(start, 'dataBytes');
      const bundledBytes = num(done, 'bundledSize');
      const parts = num(done, 'parts');
      const sizes = { imageBytes: opts.imageBytes, dataBytes, bundledBytes, parts };
      add(result(bundling, b, resources(done), sizes));

      opts.onProgress?.(`Running amibundle unbundle of the ${codec} bundle...`);
      const restoring: RunKind = { ...bundling, command: 'unbundle' };
      add(await measureUnbundle(opts, restoring, sizes, bundleDir, restoreDir, undefined, restoredSha1));
    } finally {
      await fs.promises.rm(bundleDir, { recursive: true, force: true });
      await fs.promises.rm(restoreDir, { recursive: true, force: true });
    }
  }
  if (opts.ec2Layout) {
    const missing = EC2_LAYOUT_TOOLS.filter((t) => !onPath(t));
    if (missing.length > 0)
      opts.onSkip?.(
        `unbundle of the ec2-ami-tools layout skipped: ${missing.join(', ')} not on PATH (the layout is made with tar, gzip and openssl)`,
      );
    else add(await measureEc2Layout(opts, restoredSha1));
  }
  return results;
}

/** One timed `amibundle unbundle` of a bundle in `bundleDir`, its restored image checked by SHA-1. */
async function measureUnbundle(
  opts: EndToEndOptions,
  kind: RunKind,
  sizes: Pick<EndToEndResult, 'imageBytes' | 'dataBytes' | 'bundledBytes' | 'parts'>,
  bundleDir: string,
  restoreDir: string,
  manifest: string | undefined,
  restoredSha1: (restored: string) => Promise<string>,
): Promise<EndToEndResult> {
  const u = await runCli(
    unbundleArgs(opts, bundleDir, restoreDir, manifest),
    runLabel(kind),
    opts.signal,
    opts.onSpawn,
  );
  const done = event(u, 'done', 'unbundle');
  const digest = await restoredSha1(restoredPath(done, restoreDir));
  return result(kind, u, resources(done), { ...sizes, restoredSha1: digest });
}

/**
 * `amibundle unbundle` of the image bundled as ec2-ami-tools bundles (tar -cS | gzip -9 | openssl
 * enc, one gzip member without piece marks). Making the bundle is not timed.
 */
async function measureEc2Layout(
  opts: EndToEndOptions,
  restoredSha1: (restored: string) => Promise<string>,
): Promise<EndToEndResult> {
  const bundleDir = await fs.promises.mkdtemp(path.join(opts.workDir, 'bundle-ec2-'));
  const restoreDir = await fs.promises.mkdtemp(path.join(opts.workDir, 'restore-ec2-'));
  try {
    opts.onProgress?.(
      'Making an ec2-ami-tools layout bundle (tar -cS | gzip -9 | openssl enc) of the whole image...',
    );
    const made = await makeEc2LayoutBundle(opts.imagePath, bundleDir, opts.keys, opts.signal);
    const kind: RunKind = { command: 'unbundle', codec: 'gzip', level: 9, layout: 'ec2-ami-tools' };
    opts.onProgress?.('Running amibundle unbundle of the ec2-ami-tools layout bundle...');
    const sizes = {
      imageBytes: opts.imageBytes,
      dataBytes: await imageDataBytes(opts.imagePath),
      bundledBytes: made.bundledBytes,
      parts: made.parts,
    };
    return await measureUnbundle(opts, kind, sizes, bundleDir, restoreDir, made.manifestPath, restoredSha1);
  } finally {
    await fs.promises.rm(bundleDir, { recursive: true, force: true });
    await fs.promises.rm(restoreDir, { recursive: true, force: true });
  }
}
