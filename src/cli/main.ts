// Entry point shared by `amibundle <command>` and the drop-in ec2-* executables: parse flags,
// run the command, and turn any failure into one line on stderr and the documented exit code.
import fs from 'node:fs';
import os from 'node:os';
import readline from 'node:readline';
import { AmiError, ExitCode, InterruptedError, UsageError, describeError } from '../errors.js';
import { printable } from '../printable.js';
import { compatibleAmiToolsVersion, manifestVersion, toolVersion } from '../version.js';
import type { RunContext } from './command.js';
import { formatHelp, parseArgs, type ParsedOptions } from './options.js';
import { commands, findCommand, type CommandEntry } from './registry.js';
import { createReporter, type OutputMode, type Reporter } from './reporter.js';

const PROMPT_TIMEOUT_MS = 30_000;
/**
 * After one SIGINT/SIGTERM the run cleans up and exits by itself; if that has not happened by
 * then (a read stuck in the kernel, a clean-up request to a server that stopped answering), the
 * process exits anyway, with 128 + the signal's number, and the 'exit' hooks remove temporary
 * files and undo mounts synchronously. Well inside the 2 s a supervisor may wait before SIGKILL.
 */
const FORCED_EXIT_MS = 1_500;

function versionLine(name: string): string {
  return `${name} ${toolVersion} (amibundle; compatible with ec2-ami-tools ${compatibleAmiToolsVersion}, manifest ${manifestVersion.replace(/-/g, '')})`;
}

function topLevelHelp(): string {
  // The summaries start two spaces after the longest command name.
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  const rows = commands.map(
    (c) => `    ${c.name.padEnd(width)}${c.summary}${c.tool ? ` (drop-in: ${c.tool})` : ''}`,
  );
  return [
    'Usage: amibundle <command> [OPTIONS]',
    '',
    'Bundle, move and restore EC2 instance-store (S3-backed) machine images.',
    '',
    'COMMANDS',
    ...rows,
    '',
    "Run 'amibundle <command> --help' for a command's options and examples.",
    '',
  ].join('\n');
}

/** Maps errors that are not ours (Node system errors mostly) to a line a person can act on. */
function explainForeignError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const where = e?.path ? ` '${e.path}'` : '';
  switch (e?.code) {
    case 'ENOENT':
      return `no such file or directory${where}`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied${where}: run as a user who may access it`;
    case 'ENOSPC':
      return `no space left on the device${where}: free space or choose another destination (-d)`;
    case 'EROFS':
      return `read-only file system${where}: choose a writable destination (-d)`;
    case 'EISDIR':
      return `is a directory${where}`;
    default:
      return describeError(err);
  }
}

function makeConfirm(batch: boolean, out: Reporter): (question: string) => Promise<boolean> {
  return async (question: string) => {
    out.warn(question);
    if (batch) return true;
    if (out.mode !== 'text') return false;
    process.stdout.write('Are you sure you want to continue? [y/N] ');
    const rl = readline.createInterface({ input: process.stdin, terminal: false });
    try {
      const answer = await new Promise<string | undefined>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new AmiError('timed out waiting for user input', ExitCode.promptTimeout)),
          PROMPT_TIMEOUT_MS,
        );
        rl.once('line', (line) => {
          clearTimeout(timer);
          resolve(line);
        });
        rl.once('close', () => {
          clearTimeout(timer);
          resolve(undefined);
        });
      });
      return answer !== undefined && /^y/i.test(answer.trim());
    } finally {
      rl.close();
    }
  };
}

function outputMode(opts: ParsedOptions | undefined, argv: readonly string[]): OutputMode {
  if (opts) return opts.flag('json') ? 'json' : opts.flag('quiet') ? 'quiet' : 'text';
  // Parsing failed: honour --json if it was typed, so machines still get an error event.
  return argv.includes('--json') ? 'json' : 'text';
}

/** Runs one command; returns the process exit code. Never throws. */
export async function runCommand(
  entry: CommandEntry,
  argv: readonly string[],
  invokedAs: string,
): Promise<number> {
  let opts: ParsedOptions | undefined;
  let out: Reporter = createReporter({ mode: outputMode(undefined, argv), debug: argv.includes('--debug') });
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) process.exit(ExitCode.interrupted);
    controller.abort(new InterruptedError(signal));
    setTimeout(() => {
      try {
        fs.writeSync(
          2,
          `${invokedAs} interrupted by ${signal}; clean-up did not finish in time, exiting now.\n`,
        );
      } catch {
        /* stderr gone: exit all the same */
      }
      process.exit(128 + os.constants.signals[signal]);
    }, FORCED_EXIT_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const command = await entry.load();
    opts = parseArgs(command.spec, argv);
    out = createReporter({ mode: outputMode(opts, argv), debug: opts.flag('debug') });
    if (opts.flag('version')) {
      process.stdout.write(`${versionLine(invokedAs)}\n`);
      return ExitCode.ok;
    }
    if (opts.flag('help')) {
      process.stdout.write(formatHelp(command.spec, invokedAs));
      return ExitCode.ok;
    }
    if (opts.flag('manual')) {
      process.stdout.write(`${command.spec.manual.trim()}\n\n${formatHelp(command.spec, invokedAs)}`);
      return ExitCode.ok;
    }
    const ctx: RunContext = {
      invokedAs,
      dropIn: invokedAs.startsWith('ec2-'),
      out,
      signal: controller.signal,
      confirm: makeConfirm(opts.flag('batch'), out),
    };
    await command.run(opts, ctx);
    return ExitCode.ok;
  } catch (err) {
    const aborted = controller.signal.aborted;
    const failure = aborted ? (controller.signal.reason as AmiError) : err;
    out.endProgress();
    let code: number;
    let line: string;
    if (failure instanceof AmiError) {
      code = failure.exitCode;
      line = failure.message + (failure.hint ? `; ${failure.hint}` : '');
      if (failure instanceof UsageError) line += ` (see '${invokedAs} --help')`;
    } else {
      code = ExitCode.runtime;
      line = explainForeignError(failure);
    }
    if (code === ExitCode.interrupted) line = `${invokedAs} interrupted; partial output removed.`;
    else line = `ERROR: ${line}`;
    if (out.mode === 'json') out.event({ type: 'error', exitCode: code, message: line });
    process.stderr.write(`${printable(line)}\n`);
    if (opts?.flag('debug') || argv.includes('--debug')) {
      let cause: unknown = err;
      while (cause instanceof Error) {
        process.stderr.write(`${cause.stack ?? cause.message}\n`);
        cause = cause.cause;
      }
    }
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `amibundle <command> …` */
export async function amibundleMain(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(topLevelHelp());
    return name === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (name === '--version') {
    process.stdout.write(`${versionLine('amibundle')}\n`);
    return ExitCode.ok;
  }
  const entry = findCommand(name);
  if (!entry) {
    process.stderr.write(`ERROR: unknown command '${name}' (see 'amibundle --help' for the list)\n`);
    return ExitCode.usage;
  }
  return runCommand(entry, rest, `amibundle ${entry.name}`);
}

/** A drop-in executable such as `ec2-bundle-image`. */
export async function dropInMain(tool: string, argv: readonly string[]): Promise<number> {
  const entry = findCommand(tool);
  if (!entry) throw new Error(`no command for ${tool}`);
  return runCommand(entry, argv, tool);
}

/**
 * The program by the name it was started under: a drop-in name (`ec2-bundle-vol`, a link made by
 * `amibundle install-links`) acts as that tool, any other name as `amibundle <command>`.
 */
export function mainByName(invokedName: string, argv: readonly string[]): Promise<number> {
  const entry = findCommand(invokedName);
  return entry?.tool === invokedName ? dropInMain(invokedName, argv) : amibundleMain(argv);
}

/**
 * Exits with the code once stdout and stderr have drained: exiting at once could cut piped
 * output short, and waiting for the event loop to empty could hang on idle sockets.
 */
export function finish(code: Promise<number>): void {
  void code.then((c) => {
    process.stdout.write('', () => process.stderr.write('', () => process.exit(c)));
  });
}
