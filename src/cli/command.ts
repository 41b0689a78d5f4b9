// The shape every command module exports: its flag table (for parsing and help, built from
// flag-catalog.ts) and a run function: flags in, one library call (after opening the S3 part sink
// or source it may take), events and result lines out. The workflows themselves live in the
// feature folders (bundleImage, restoreBundle, bundleVolume, migrateManifestFile, …).
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
