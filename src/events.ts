// What the library tells its caller while it works: lines for people, structured events for
// machines, progress. It sits at the ground floor so that bundle/, restore/, s3/, volume/ and the
// rest report without knowing how (or whether) anything is shown; cli/reporter.ts renders it as
// text, progress bars or JSON lines.

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

const nothing = (): void => undefined;

/** A reporter that drops everything: for library callers and tests. */
export const silentReporter: Reporter = {
  mode: 'quiet',
  debugEnabled: false,
  info: nothing,
  warn: nothing,
  debug: nothing,
  event: nothing,
  progress: nothing,
  endProgress: nothing,
};
