// Child processes for the boot tests: run a tool with a hard time limit (its whole process
// group is killed when the limit passes), keep its output, and fail with the last lines of it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

export interface RunResult {
  readonly code: number | null;
  readonly output: string;
}

/** The last `n` non-empty lines of a text, for error messages. */
export function tail(text: string, n: number): string {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-n)
    .join('\n');
}

/** True when `cmd` is an executable on PATH (or an executable path). */
export function onPath(cmd: string): boolean {
  const dirs = cmd.includes('/') ? [''] : (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  return dirs.some((d) => {
    try {
      fs.accessSync(d ? `${d}/${cmd}` : cmd, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Runs `cmd` in its own process group with stdout and stderr merged (and copied to `logFile`
 * when given); throws with the last 30 lines when it fails or runs past `timeLimitMs`.
 */
export function runLogged(
  cmd: string,
  args: readonly string[],
  opts: { timeLimitMs: number; logFile?: string; env?: NodeJS.ProcessEnv; what: string },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    const log = opts.logFile ? fs.createWriteStream(opts.logFile) : undefined;
    let output = '';
    const take = (d: Buffer): void => {
      output += d.toString('utf8');
      if (output.length > 4 * 1024 * 1024) output = output.slice(-1024 * 1024);
      log?.write(d);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    }, opts.timeLimitMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      log?.end();
      reject(new Error(`${opts.what}: cannot run ${cmd}: ${err.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      log?.end();
      if (timedOut)
        reject(
          new Error(
            `${opts.what}: still running after ${opts.timeLimitMs / 1000} s, killed. Last output:\n${tail(output, 30)}`,
          ),
        );
      else if (code !== 0)
        reject(new Error(`${opts.what}: ${cmd} exited with ${code}. Last output:\n${tail(output, 30)}`));
      else resolve({ code, output });
    });
  });
}
