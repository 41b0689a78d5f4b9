// Runs the system tools bundle-vol and doctor need (rsync, mkfs, losetup, mount, grub-install …)
// without a shell: arguments are passed as they are, output is captured, and an abort kills the
// tool's whole process group. A failure becomes one line naming the tool and its last complaint.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { AmiError, ExitCode } from '../errors.js';
import type { Reporter } from '../events.js';

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunToolOptions {
  readonly signal?: AbortSignal;
  /** Echoes the command line and its output under --debug. */
  readonly out?: Reporter;
  /** Exit codes that are not failures (0 always is). */
  readonly okCodes?: readonly number[];
  readonly input?: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Called for every complete line (split at CR or LF) as it arrives. */
  readonly onStdoutLine?: (line: string) => void;
  readonly onStderrLine?: (line: string) => void;
  /** What the failure message calls this step (default: the command name). */
  readonly what?: string;
}

/** Debian packages that provide the tools, for "not installed" messages. */
const packageOf: Record<string, string> = {
  rsync: 'rsync',
  sfdisk: 'fdisk',
  partx: 'util-linux',
  losetup: 'mount',
  mount: 'mount',
  umount: 'mount',
  blkid: 'util-linux',
  'mkfs.ext2': 'e2fsprogs',
  'mkfs.ext3': 'e2fsprogs',
  'mkfs.ext4': 'e2fsprogs',
  mke2fs: 'e2fsprogs',
  tune2fs: 'e2fsprogs',
  dumpe2fs: 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  xfs_admin: 'xfsprogs',
  xfs_info: 'xfsprogs',
  'grub-install': 'grub2-common and grub-pc-bin',
  udevadm: 'udev',
  chroot: 'coreutils',
  mknod: 'coreutils',
  sync: 'coreutils',
};

/** Keeps only the tail of a long output: errors are at the end, and memory stays bounded. */
const KEEP_BYTES = 256 * 1024;

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(shellQuote).join(' ');
}

function lastLine(text: string): string {
  const lines = text
    .split(/[\r\n]+/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  return lines[lines.length - 1] ?? '';
}

/** A tool ran and failed; its exit code and output are kept for callers that look closer. */
export class ToolError extends AmiError {
  override readonly name = 'ToolError';
  constructor(
    message: string,
    readonly result: ToolResult,
  ) {
    super(message, ExitCode.runtime);
  }
}

export function notInstalled(cmd: string): AmiError {
  const pkg = packageOf[cmd];
  return new AmiError(
    `${cmd} is not installed or not on PATH`,
    ExitCode.runtime,
    pkg ? `install it (Debian/Ubuntu package: ${pkg})` : 'install it',
  );
}

class LineSplitter {
  private rest = '';
  constructor(private readonly onLine: (line: string) => void) {}
  push(chunk: string): void {
    const parts = (this.rest + chunk).split(/\r\n|\r|\n/);
    this.rest = parts.pop() ?? '';
    for (const p of parts) this.onLine(p);
  }
  end(): void {
    if (this.rest.length > 0) this.onLine(this.rest);
    this.rest = '';
  }
}

/** The tail of a growing output: errors are at the end, and memory stays bounded. */
function keepTail(acc: string, chunk: string): string {
  const next = acc + chunk;
  return next.length > KEEP_BYTES ? next.slice(next.length - KEEP_BYTES) : next;
}

/**
 * Captures a tool's output as it arrives: the tail of each stream for the result and the failure
 * message, every line to --debug and to the caller's line callbacks. `end()` flushes the last
 * unterminated lines once the tool has exited.
 */
function captureOutput(
  child: ChildProcessWithoutNullStreams,
  cmd: string,
  opts: RunToolOptions,
): { readonly output: { stdout: string; stderr: string }; end(): void } {
  const output = { stdout: '', stderr: '' };
  const outLines = new LineSplitter((l) => {
    opts.out?.debug(`${cmd}: ${l}`);
    opts.onStdoutLine?.(l);
  });
  const errLines = new LineSplitter((l) => {
    opts.out?.debug(`${cmd}: ${l}`);
    opts.onStderrLine?.(l);
  });
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (c: string) => {
    output.stdout = keepTail(output.stdout, c);
    outLines.push(c);
  });
  child.stderr.on('data', (c: string) => {
    output.stderr = keepTail(output.stderr, c);
    errLines.push(c);
  });
  return {
    output,
    end() {
      outLines.end();
      errLines.end();
    },
  };
}

/**
 * On abort, SIGTERM to the tool's whole process group, then SIGKILL after 5 s. Returns the
 * function that stops listening (and cancels a pending SIGKILL) once the tool is gone.
 */
function killGroupOnAbort(
  child: ChildProcessWithoutNullStreams,
  signal: AbortSignal | undefined,
): () => void {
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    killTimer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, 5000);
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  return () => {
    signal?.removeEventListener('abort', onAbort);
    if (killTimer) clearTimeout(killTimer);
  };
}

/**
 * Runs `cmd args` and resolves with its output, or rejects with an AmiError for a failing exit
 * code. An abort sends SIGTERM (then SIGKILL after 5 s) to the tool's process group and rejects
 * with the abort reason once the tool has exited, so callers clean up after it, not during it.
 */
export function runTool(
  cmd: string,
  args: readonly string[],
  opts: RunToolOptions = {},
): Promise<ToolResult> {
  opts.out?.debug(`run: ${commandLine(cmd, args)}`);
  if (opts.signal?.aborted) return Promise.reject(opts.signal.reason as Error);
  return new Promise<ToolResult>((resolve, reject) => {
    // Own process group: a terminal Ctrl-C reaches us, not the tool, so clean-up stays orderly.
    const child = spawn(cmd, [...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const captured = captureOutput(child, cmd, opts);
    child.stdin.on('error', () => {
      /* the tool may exit without reading its input; its exit code tells what happened */
    });
    child.stdin.end(opts.input ?? '');
    const stopListening = killGroupOnAbort(child, opts.signal);

    child.on('error', (err: NodeJS.ErrnoException) => {
      stopListening();
      if (err.code === 'ENOENT') reject(notInstalled(cmd));
      else
        reject(
          new AmiError(`cannot run ${cmd}: ${err.message}`, ExitCode.runtime, undefined, { cause: err }),
        );
    });
    child.on('close', (code, sig) => {
      stopListening();
      captured.end();
      if (opts.signal?.aborted) {
        reject(opts.signal.reason as Error);
        return;
      }
      const { stdout, stderr } = captured.output;
      const exit = code ?? 128;
      if (exit === 0 || opts.okCodes?.includes(exit)) {
        resolve({ code: exit, stdout, stderr });
        return;
      }
      const why = lastLine(stderr) || lastLine(stdout) || (sig ? `killed by ${sig}` : `exit status ${exit}`);
      reject(new ToolError(`${opts.what ?? cmd} failed: ${why}`, { code: exit, stdout, stderr }));
    });
  });
}

/** Synchronous variant for the emergency clean-up that runs while the process exits. */
export function runToolSync(cmd: string, args: readonly string[]): boolean {
  const r = spawnSync(cmd, [...args], { stdio: 'ignore', timeout: 15_000 });
  return r.status === 0;
}

/** True when `cmd` is an executable on PATH (or an absolute path that is executable). */
export function onPath(cmd: string): boolean {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore' });
  return r.status === 0;
}
