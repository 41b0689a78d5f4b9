// The copy itself: rsync with -aHAXS --numeric-ids semantics (hard links, ACLs, every xattr
// namespace including security.selinux and security.capability, sparse files, devices, owners,
// times), the filter rules on its command line, and its output read back: what it left out (by
// rule), what it could not preserve (by path), and how far it got.
import type { Reporter } from '../events.js';
import { AmiError } from '../errors.js';
import { rsyncFilterArgs, type CopyRule, type RuleReason } from './copy-rules.js';
import { commandLine, runTool, type ToolResult } from '../io/run-tool.js';

export interface CopyProblem {
  /** The path inside the volume, when rsync named one. */
  readonly path?: string;
  readonly message: string;
}

export interface CopyReport {
  /** rsync's exit status: 0, 23 (some things not preserved) or 24 (files vanished). */
  readonly exitCode: number;
  /** Things that could not be copied or preserved exactly. */
  readonly problems: readonly CopyProblem[];
  /** Files that disappeared while being copied (a live system). */
  readonly vanished: readonly string[];
  /** Every path rsync left out, by the reason of the rule that matched it. */
  readonly excluded: ReadonlyMap<RuleReason, readonly string[]>;
}

export interface CopyOptions {
  readonly signal?: AbortSignal;
  readonly out?: Reporter;
  /** Estimated bytes to copy, for progress. */
  readonly totalBytes?: number;
  /** Extra rsync arguments (tests, benchmarks). */
  readonly extraArgs?: readonly string[];
}

export const rsyncBaseArgs = [
  '--archive',
  '--hard-links',
  '--acls',
  '--xattrs',
  '--sparse',
  '--numeric-ids',
  // Straight to the final name: nothing to rename in an empty target, and messages name the real file.
  '--inplace',
  // Times compared to the nanosecond, not the second: rsync leaves a directory's time alone when it
  // matches to the second, so a directory changed in the same second as the copy kept the time its
  // copy was made at (seen on /boot, /srv, ... in about one run in three).
  '--modify-window=-1',
] as const;

const hiding =
  /^\[\w+\] hiding (?:file|directory|symlink|device|special file|\S+) (.*) because of pattern (.*?)\/?$/;
const progress = /^\s*([\d,.]+)\s+\d+%/;

/** rsync quotes paths in its messages: the first quoted string, with the image or volume prefix made relative. */
function problemPath(line: string, volume: string, target: string): string | undefined {
  const m = /"+([^"]+)"+/.exec(line);
  if (!m) return undefined;
  let p = m[1]!;
  for (const root of [target, volume]) {
    const prefix = root === '/' ? '/' : `${root}/`;
    if (p.startsWith(prefix)) {
      p = `/${p.slice(prefix.length)}`;
      break;
    }
  }
  return p.startsWith('/') ? p : `/${p}`;
}

/** What rsync's output says, sorted as it arrives: left-out paths by rule, problems, vanished files. */
interface RsyncReadings {
  readonly excluded: Map<RuleReason, string[]>;
  readonly problems: CopyProblem[];
  readonly vanished: string[];
  onStdout(line: string): void;
  onStderr(line: string): void;
}

function readRsyncOutput(
  volume: string,
  target: string,
  rules: readonly CopyRule[],
  opts: CopyOptions,
): RsyncReadings {
  const reasonOf = new Map<string, RuleReason>();
  for (const r of rules) if (r.action === '-' && !reasonOf.has(r.pattern)) reasonOf.set(r.pattern, r.reason);
  const seenExcluded = new Set<string>();
  const out = opts.out;
  const readings: RsyncReadings = {
    excluded: new Map(),
    problems: [],
    vanished: [],
    onStdout(line) {
      const h = hiding.exec(line);
      if (h) {
        const p = `/${h[1]!}`;
        if (seenExcluded.has(p)) return;
        seenExcluded.add(p);
        const reason = reasonOf.get(h[2]!) ?? reasonOf.get(`${h[2]!}/`) ?? 'user';
        let list = readings.excluded.get(reason);
        if (!list) readings.excluded.set(reason, (list = []));
        list.push(p);
        out?.debug(`excluded (${reason} rule ${h[2]!}): ${p}`);
        return;
      }
      const m = progress.exec(line);
      if (m && opts.totalBytes)
        out?.progress({
          phase: 'copy',
          done: Number(m[1]!.replace(/[,.]/g, '')),
          total: opts.totalBytes,
          unit: 'bytes',
        });
    },
    onStderr(line) {
      const text = line.trim();
      if (text === '' || text.startsWith('rsync error:')) return;
      const vanish = /^file has vanished: (.*)$/.exec(text);
      if (vanish) {
        readings.vanished.push(problemPath(vanish[1]!, volume, target) ?? vanish[1]!);
        return;
      }
      const p = problemPath(text, volume, target);
      // The image's temporary mount point means nothing to the reader: show paths inside the image.
      const message = text
        .replace(/^rsync:\s*/, '')
        .split(`${target}/`)
        .join('/');
      readings.problems.push({ ...(p ? { path: p } : {}), message });
    },
  };
  return readings;
}

/** Whether rsync's complaints say data did not fit (not merely an xattr or ACL it could not set). */
function ranOutOfSpace(problems: readonly CopyProblem[]): boolean {
  return problems.some(
    (p) => /write failed|No space left on device/.test(p.message) && !/xattr|xal_|acl/i.test(p.message),
  );
}

export async function copyVolume(
  volume: string,
  target: string,
  rules: readonly CopyRule[],
  opts: CopyOptions = {},
): Promise<CopyReport> {
  const out = opts.out;
  const readings = readRsyncOutput(volume, target, rules, opts);
  const args = [
    ...rsyncBaseArgs,
    ...rsyncFilterArgs(rules),
    // Names every path a rule leaves out (stdout): counted here, listed under --debug.
    '--debug=FILTER1',
    '--info=progress2',
    ...(opts.extraArgs ?? []),
    volume === '/' ? '/' : `${volume}/`,
    `${target}/`,
  ];

  // Not passing `out` to runTool: rsync's many output lines are sorted by readRsyncOutput.
  out?.debug(`run: ${commandLine('rsync', args)}`);
  let result: ToolResult;
  try {
    result = await runTool('rsync', args, {
      signal: opts.signal,
      okCodes: [23, 24],
      onStdoutLine: (line) => readings.onStdout(line),
      onStderrLine: (line) => readings.onStderr(line),
      what: 'copying the volume (rsync)',
    });
  } catch (err) {
    out?.endProgress();
    const text = `${String(err)}\n${readings.problems.map((p) => p.message).join('\n')}`;
    if (/No space left on device|\(28\)/.test(text))
      throw new AmiError('the image is full: the volume does not fit', undefined, 'give a larger -s/--size', {
        cause: err,
      });
    throw err;
  }
  out?.endProgress();
  // A full image can also end as a "partial transfer" (23): data that did not fit is not a detail.
  if (ranOutOfSpace(readings.problems))
    throw new AmiError('the image is full: the volume does not fit', undefined, 'give a larger -s/--size');
  const { problems, vanished, excluded } = readings;
  return { exitCode: result.code, problems, vanished, excluded };
}
