// Typed errors: each carries the exit code documented in README's exit-code table (which keeps
// ec2-ami-tools' codes) and a one-line message written for people, plus an optional hint.

export const ExitCode = {
  ok: 0,
  /** Bad command line: unknown flag, missing or malformed value, conflicting flags. */
  usage: 1,
  /** A file or directory named on the command line does not exist or is not readable. */
  missingFile: 2,
  /** S3 failed after retries (bucket, key, HTTP status and S3 code are in the message). */
  s3: 3,
  /** An interactive prompt timed out. */
  promptTimeout: 5,
  /** The bucket exists in another region than the one requested. */
  regionMismatch: 10,
  /** bundle-vol: instance metadata unreachable while inheriting. */
  metadata: 12,
  /** Any other run-time failure: bad bundle, digest mismatch, I/O error. */
  runtime: 254,
  /** Interrupted (SIGINT/SIGTERM). */
  interrupted: 255,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class AmiError extends Error {
  override readonly name: string = 'AmiError';
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.runtime,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The command line is wrong; the user should read `--help`. */
export class UsageError extends AmiError {
  override readonly name = 'UsageError';
  constructor(message: string, hint?: string) {
    super(message, ExitCode.usage, hint);
  }
}

/** A path given on the command line is missing or of the wrong kind. */
export class MissingFileError extends AmiError {
  override readonly name = 'MissingFileError';
  constructor(message: string, hint?: string) {
    super(message, ExitCode.missingFile, hint);
  }
}

/** A bundle, manifest or image is malformed, hostile, or fails a check. */
export class BundleError extends AmiError {
  override readonly name = 'BundleError';
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, ExitCode.runtime, hint, options);
  }
}

/** The run was interrupted by a signal; partial output has been removed. */
export class InterruptedError extends AmiError {
  override readonly name = 'InterruptedError';
  constructor(signal: string) {
    super(`interrupted by ${signal}`, ExitCode.interrupted);
  }
}

/** Best-effort text of any thrown value, for the one-line error report. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
