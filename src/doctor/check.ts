// What one doctor check reports: a status, what was found, and for warnings and failures the fix.
export type CheckStatus = 'ok' | 'warning' | 'failed';

export interface CheckResult {
  /** Short name of the check, e.g. `bucket`, `image-boot`. */
  readonly name: string;
  readonly status: CheckStatus;
  /** What was found, one line. */
  readonly message: string;
  /** What to do about a warning or failure. */
  readonly fix?: string;
}

export function ok(name: string, message: string): CheckResult {
  return { name, status: 'ok', message };
}

export function warning(name: string, message: string, fix?: string): CheckResult {
  return { name, status: 'warning', message, ...(fix !== undefined ? { fix } : {}) };
}

export function failed(name: string, message: string, fix?: string): CheckResult {
  return { name, status: 'failed', message, ...(fix !== undefined ? { fix } : {}) };
}

/** A thrown error as a failed check: its one-line message and the hint typed errors carry. */
export function failedFrom(name: string, err: unknown, fallbackFix?: string): CheckResult {
  const message = err instanceof Error ? err.message : String(err);
  const hint = (err as { hint?: unknown }).hint;
  return failed(name, message, typeof hint === 'string' ? hint : fallbackFix);
}
