// How a command talks to people and machines. Text mode prints plain lines on stdout (the
// reference's progress messages) and warnings on stderr; `--json` prints one JSON event per line
// on stdout instead; `--quiet` keeps only errors. Progress bars appear only on a terminal.

export type OutputMode = 'text' | 'json' | 'quiet';

export interface ProgressUpdate {
  /** What is progressing, e.g. `bundle`, `upload`, `restore`. */
  readonly phase: string;
  readonly done: number;
  readonly total?: number;
  readonly unit: 'bytes' | 'parts';
}

export interface JsonEvent {
  readonly type: string;
  readonly [key: string]: unknown;
}

export interface Reporter {
  readonly mode: OutputMode;
  readonly debugEnabled: boolean;
  /** A progress line a person reads (stdout in text mode); becomes `{type:"info"}` in JSON. */
  info(line: string): void;
  /** A warning (stderr in text mode); `{type:"warning"}` in JSON. */
  warn(line: string): void;
  /** Detail printed only with --debug (stderr). Never pass secrets. */
  debug(line: string): void;
  /** A structured event: printed only in JSON mode. */
  event(e: JsonEvent): void;
  /** Throttled progress: a bar on a terminal, JSON `progress` events, nothing otherwise. */
  progress(p: ProgressUpdate): void;
  /** Ends any progress display (before printing the final lines). */
  endProgress(): void;
}

export interface ReporterOptions {
  readonly mode: OutputMode;
  readonly debug: boolean;
  readonly stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr?: NodeJS.WritableStream;
}

function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

class StreamReporter implements Reporter {
  readonly mode: OutputMode;
  readonly debugEnabled: boolean;
  private readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  private readonly stderr: NodeJS.WritableStream;
  private readonly started = Date.now();
  private lastProgressAt = 0;
  private progressShown = false;

  constructor(opts: ReporterOptions) {
    this.mode = opts.mode;
    this.debugEnabled = opts.debug;
    this.stdout = opts.stdout ?? process.stdout;
    this.stderr = opts.stderr ?? process.stderr;
  }

  info(line: string): void {
    if (this.mode === 'text') {
      this.endProgress();
      this.stdout.write(`${line}\n`);
    } else if (this.mode === 'json') this.event({ type: 'info', message: line });
  }

  warn(line: string): void {
    if (this.mode === 'text') {
      this.endProgress();
      this.stderr.write(`WARNING: ${line}\n`);
    } else if (this.mode === 'json') this.event({ type: 'warning', message: line });
  }

  debug(line: string): void {
    if (!this.debugEnabled) return;
    this.endProgress();
    this.stderr.write(`DEBUG: ${line}\n`);
  }

  event(e: JsonEvent): void {
    if (this.mode !== 'json') return;
    this.stdout.write(`${JSON.stringify({ ...e, time: new Date().toISOString() })}\n`);
  }

  progress(p: ProgressUpdate): void {
    const now = Date.now();
    const final = p.total !== undefined && p.done >= p.total;
    if (!final && now - this.lastProgressAt < 250) return;
    this.lastProgressAt = now;
    if (this.mode === 'json') {
      this.event({ type: 'progress', phase: p.phase, done: p.done, total: p.total, unit: p.unit });
      return;
    }
    if (this.mode !== 'text' || !this.stdout.isTTY) return;
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = p.done / seconds;
    const show = (n: number): string => (p.unit === 'bytes' ? formatBytes(n) : `${n} parts`);
    let text = `${p.phase}: ${show(p.done)}`;
    if (p.total !== undefined && p.total > 0) {
      const pct = Math.min(100, (p.done / p.total) * 100);
      const eta = rate > 0 ? Math.max(0, (p.total - p.done) / rate) : 0;
      text += ` of ${show(p.total)} (${pct.toFixed(0)}%), ETA ${eta.toFixed(0)} s`;
    }
    if (p.unit === 'bytes') text += `, ${formatBytes(rate)}/s`;
    this.stdout.write(`\r\x1b[2K${text}`);
    this.progressShown = true;
  }

  endProgress(): void {
    if (!this.progressShown) return;
    this.progressShown = false;
    this.stdout.write('\r\x1b[2K');
  }
}

export function createReporter(opts: ReporterOptions): Reporter {
  return new StreamReporter(opts);
}

/** A reporter that drops everything: for library callers and tests. */
export const silentReporter: Reporter = createReporter({ mode: 'quiet', debug: false });
