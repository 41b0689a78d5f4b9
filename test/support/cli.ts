// Runs amibundle's executables as a user would: a child process, real argv, exit code, output.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from './fixtures.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(
  tool: string,
  args: readonly string[],
  opts: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    input?: string;
    timeoutMs?: number;
    /** Another copy's bin/ directory (an installed package's) instead of this checkout's. */
    binDir?: string;
  } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const script = path.join(opts.binDir ?? path.join(projectRoot, 'bin'), `${tool}.js`);
    const child = spawn(process.execPath, [script, ...args], {
      cwd: opts.cwd ?? projectRoot,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
