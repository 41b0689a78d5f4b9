// The shape every command module exports: its flag table (for parsing and help) and a run
// function that maps parsed flags onto one library call.
import type { CommandSpec, ParsedOptions } from './options.js';
import type { Reporter } from './reporter.js';

export interface RunContext {
  /** The name the user typed: `amibundle bundle-image` or `ec2-bundle-image`. */
  readonly invokedAs: string;
  /** True when invoked through an ec2-ami-tools drop-in name. */
  readonly dropIn: boolean;
  readonly out: Reporter;
  /** Aborted on SIGINT/SIGTERM: long operations stop and remove partial output. */
  readonly signal: AbortSignal;
  /** Asks a yes/no question (interactive mode only; `--batch` answers yes). */
  confirm(question: string): Promise<boolean>;
}

export interface Command {
  readonly spec: CommandSpec;
  run(opts: ParsedOptions, ctx: RunContext): Promise<void>;
}
