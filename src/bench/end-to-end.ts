// End-to-end runs: `amibundle bundle-image` and `amibundle unbundle` of the whole image as child
// processes, as a user runs them. Wall time is measured here; CPU time and peak RSS are what each
// child reports about itself in the `resources` field of its JSON `done` event: its own peak
// (VmHWM, io/peak-rss.ts), not getrusage's, which would carry this large process's size through
// fork and exec.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LEVEL_RANGE, type CompressionCodec } from '../codec/compression.js';
import { AmiError } from '../errors.js';
import type { BenchKeys } from './bench-keys.js';
import { mbPerSecond } from './measure.js';
import type { EndToEndResult } from './report.js';

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
  readonly signal?: AbortSignal;
  readonly onResult?: (r: EndToEndResult) => void;
  readonly onProgress?: (line: string) => void;
  /** Called with each child's process id as it starts (tests watch it from outside). */
  readonly onSpawn?: (pid: number, command: string) => void;
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
  signal?: AbortSignal,
  onSpawn?: EndToEndOptions['onSpawn'],
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [BENCH_CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    if (child.pid !== undefined) onSpawn?.(child.pid, args[0]!);
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

function result(
  command: EndToEndResult['command'],
  codec: CompressionCodec,
  level: number,
  run: ChildRun,
  res: Resources,
  fields: Pick<EndToEndResult, 'imageBytes' | 'dataBytes' | 'bundledBytes' | 'parts'>,
): EndToEndResult {
  const cpu = res.userSeconds + res.systemSeconds;
  return {
    command,
    codec,
    level,
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
): string[] {
  return [
    'unbundle',
    '-m',
    path.join(bundleDir, `${NAME}.manifest.xml`),
    '-k',
    opts.keys.keyFile,
    '-s',
    bundleDir,
    '-d',
    restoreDir,
    '--json',
  ];
}

export async function measureEndToEnd(opts: EndToEndOptions): Promise<EndToEndResult[]> {
  const results: EndToEndResult[] = [];
  const add = (r: EndToEndResult): void => {
    results.push(r);
    opts.onResult?.(r);
  };
  for (const codec of opts.codecs) {
    const level = LEVEL_RANGE[codec].default;
    const bundleDir = await fs.promises.mkdtemp(path.join(opts.workDir, `bundle-${codec}-`));
    const restoreDir = await fs.promises.mkdtemp(path.join(opts.workDir, `restore-${codec}-`));
    try {
      opts.onProgress?.(`Running amibundle bundle-image --compress ${codec}:${level} on the whole image...`);
      const b = await runCli(bundleImageArgs(opts, codec, level, bundleDir), opts.signal, opts.onSpawn);
      const start = event(b, 'start', 'bundle-image');
      const done = event(b, 'done', 'bundle-image');
      const dataBytes = num(start, 'dataBytes');
      const bundledBytes = num(done, 'bundledSize');
      const parts = num(done, 'parts');
      add(
        result('bundle-image', codec, level, b, resources(done), {
          imageBytes: opts.imageBytes,
          dataBytes,
          bundledBytes,
          parts,
        }),
      );

      opts.onProgress?.(`Running amibundle unbundle of the ${codec} bundle...`);
      const u = await runCli(unbundleArgs(opts, bundleDir, restoreDir), opts.signal, opts.onSpawn);
      const restored = await fs.promises.stat(path.join(restoreDir, NAME));
      if (restored.size !== opts.imageBytes)
        throw new AmiError(`bench: the restored image is ${restored.size} bytes, not ${opts.imageBytes}`);
      add(
        result('unbundle', codec, level, u, resources(event(u, 'done', 'unbundle')), {
          imageBytes: opts.imageBytes,
          dataBytes,
          bundledBytes,
          parts,
        }),
      );
    } finally {
      await fs.promises.rm(bundleDir, { recursive: true, force: true });
      await fs.promises.rm(restoreDir, { recursive: true, force: true });
    }
  }
  return results;
}
