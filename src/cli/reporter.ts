// How a command talks to people and machines. Text mode prints plain lines on stdout (the
// reference's progress messages) and warnings on stderr; `--json` prints one JSON event per line
// on stdout instead; `--quiet` keeps only errors. Progress bars (cli-progress) appear only when
// stdout is a terminal. Every line is escaped (printable.ts): no control character reaches the
// terminal from a name or message.
import cliProgress from 'cli-progress';
import type { AmibundleEvent, OutputMode, ProgressUpdate, Reporter } from '../events.js';
import { printable, printableJson } from '../printable.js';
import { formatBytes } from '../format-bytes.js';
import { ownPeakRssBytes } from '../io/peak-rss.js';

export type { AmibundleEvent, OutputMode, ProgressUpdate, Reporter } from '../events.js';
export { silentReporter } from '../events.js';

export interface ReporterOptions {
  readonly mode: OutputMode;
  readonly debug: boolean;
  readonly stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr?: NodeJS.WritableStream;
}

/** Peak RSS (this process's own: peak-rss.ts) and CPU time so far (resourceUsage: microseconds). */
function resourcesSoFar(): { maxRssBytes: number; userSeconds: number; systemSeconds: number } {
  const usage = process.resourceUsage();
  return {
    maxRssBytes: ownPeakRssBytes(),
    userSeconds: usage.userCPUTime / 1e6,
    systemSeconds: usage.systemCPUTime / 1e6,
  };
}

/**
 * What a JSON line adds to an event, decided for every event type (the compiler checks that
 * none is left out): the final `done` carries what the run cost, which `amibundle bench` reads.
 * Text mode prints no events: the lines people read come through info() and warn().
 */
function jsonExtras(e: AmibundleEvent): Record<string, unknown> {
  switch (e.type) {
    case 'done':
      return { resources: resourcesSoFar() };
    case 'start':
    case 'progress':
    case 'part':
    case 'info':
    case 'warning':
    case 'copy':
    case 'image':
    case 'check':
    case 'stage':
    case 'end-to-end':
    case 'snapshot':
    case 'error':
      return {};
    default: {
      const unknown: never = e;
      throw new Error(`no rendering for event ${JSON.stringify(unknown)}`);
    }
  }
}

class StreamReporter implements Reporter {
  readonly mode: OutputMode;
  readonly debugEnabled: boolean;
  private readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  private readonly stderr: NodeJS.WritableStream;
  private lastProgressAt = 0;
  private bar: cliProgress.SingleBar | undefined;
  private barPhase: string | undefined;
  private barStarted = 0;

  constructor(opts: ReporterOptions) {
    this.mode = opts.mode;
    this.debugEnabled = opts.debug;
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
  }

  info(line: string): void {
    if (this.mode === 'text') {
      this.endProgress();
      this.stdout.write(`${printable(line)}\n`);
    } else if (this.mode === 'json') this.event({ type: 'info', message: line });
  }

  warn(line: string): void {
    if (this.mode === 'text') {
      this.endProgress();
      this.stderr.write(`WARNING: ${printable(line)}\n`);
    } else if (this.mode === 'json') this.event({ type: 'warning', message: line });
  }

  debug(line: string): void {
    if (!this.debugEnabled) return;
    this.endProgress();
    this.stderr.write(`DEBUG: ${printable(line)}\n`);
  }

  event(e: AmibundleEvent): void {
    if (this.mode !== 'json') return;
    this.stdout.write(
      `${printableJson(JSON.stringify({ ...e, ...jsonExtras(e), time: new Date().toISOString() }))}\n`,
    );
  }

  progress(p: ProgressUpdate): void {
    if (this.mode === 'json') {
      const now = Date.now();
      const final = p.total !== undefined && p.done >= p.total;
      if (!final && now - this.lastProgressAt < 1000) return;
      this.lastProgressAt = now;
      this.event({ type: 'progress', phase: p.phase, done: p.done, total: p.total, unit: p.unit });
      return;
    }
    if (this.mode !== 'text' || !this.stdout.isTTY) return;
    if (!this.bar || this.barPhase !== p.phase) {
      this.endProgress();
      this.barPhase = p.phase;
      this.barStarted = Date.now();
      this.bar = new cliProgress.SingleBar(
        {
          stream: this.stdout,
          format: `${p.phase} [{bar}] {percentage}% | {done} of {all} | {rate} | ETA {eta_formatted}`,
          barsize: 30,
          hideCursor: true,
          clearOnComplete: true,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(p.total ?? 0, p.done, this.barPayload(p));
      return;
    }
    if (p.total !== undefined) this.bar.setTotal(p.total);
    this.bar.update(p.done, this.barPayload(p));
  }

  private barPayload(p: ProgressUpdate): Record<string, string> {
    const show = (n: number): string => (p.unit === 'bytes' ? formatBytes(n) : `${n} parts`);
    const seconds = Math.max((Date.now() - this.barStarted) / 1000, 0.001);
    return {
      done: show(p.done),
      all: p.total !== undefined ? show(p.total) : '?',
      rate:
        p.unit === 'bytes'
          ? `${formatBytes(p.done / seconds)}/s`
          : `${(p.done / seconds).toFixed(1)} parts/s`,
    };
  }

  endProgress(): void {
    if (!this.bar) return;
    this.bar.stop();
    this.bar = undefined;
    this.barPhase = undefined;
  }
}

export function createReporter(opts: ReporterOptions): Reporter {
  return new StreamReporter(opts);
}
