// Command-line parsing with ec2-ami-tools (Ruby OptionParser) semantics: `--opt value`,
// `--opt=value`, `-kvalue`, unique case-insensitive long prefixes, `--[no-]flag`, `--` ends
// options, last repeat wins. Unlike the reference, stray positional arguments are refused
// (they hijacked its prompts), unless a command declares that it takes them.
import fs from 'node:fs';
import { MissingFileError, UsageError } from '../errors.js';

export type OptionKind = 'string' | 'int' | 'flag' | 'list';

export interface OptionSpec {
  /** Key in the parsed result. */
  readonly name: string;
  /** Long name without dashes, e.g. `privatekey`. */
  readonly long: string;
  /** Further long names accepted for the same option (e.g. `ec2-key`). */
  readonly aliases?: readonly string[];
  /** One-letter short name without the dash (case-sensitive). */
  readonly short?: string;
  readonly kind: OptionKind;
  readonly metavar?: string;
  readonly help: string;
  /**
   * The value the parser gives the option when the command line does not (typed: a string for
   * `string`, a number for `int`, a boolean for `flag`, an array for `list`). Shown in help
   * unless `default` describes it in words.
   */
  readonly defaultValue?: OptionValue;
  /**
   * The default as help text, for a default the parser cannot give (it depends on other flags,
   * the machine or the manifest: "the manifest's directory") or that reads better in words.
   */
  readonly default?: string;
  /** Allowed values; unique prefixes are accepted as in the reference. */
  readonly choices?: readonly string[];
  /** A flag that also accepts `--no-NAME`. */
  readonly negatable?: boolean;
  /** `list` options: `append` accumulates across repeats (comma lists are split either way). */
  readonly accumulate?: boolean;
  /** `list` options: `false` keeps each value whole (a value may hold commas, as a tag's). */
  readonly split?: boolean;
  /** Required unless `--help` and friends are given; checked in declaration order. */
  readonly required?: boolean;
  /** Accepted for compatibility but has no effect; the reason is shown in help. */
  readonly noop?: string;
  /** Paths are checked while parsing: a missing one is exit 2 with a clear message. */
  readonly path?: 'file' | 'dir' | 'exec';
  /** Help group. */
  readonly group?: 'mandatory' | 'optional' | 'common';
}

export interface CommandSpec {
  /** amibundle subcommand name, e.g. `bundle-image`. */
  readonly name: string;
  /** The drop-in executable name, e.g. `ec2-bundle-image`. */
  readonly tool?: string;
  readonly summary: string;
  readonly options: readonly OptionSpec[];
  /** Positional arguments, when the command takes any (otherwise they are refused). */
  readonly positionals?: { readonly metavar: string; readonly help: string };
  readonly examples: readonly string[];
  /** Long description printed by `--manual`. */
  readonly manual: string;
}

export type OptionValue = string | number | boolean | string[];

/** Options every command accepts (ec2-ami-tools' common group plus amibundle's output modes). */
export const commonOptions: readonly OptionSpec[] = [
  {
    name: 'help',
    long: 'help',
    short: 'h',
    kind: 'flag',
    help: 'Print this help and exit.',
    group: 'common',
  },
  { name: 'version', long: 'version', kind: 'flag', help: 'Print the version and exit.', group: 'common' },
  { name: 'manual', long: 'manual', kind: 'flag', help: 'Print the long manual and exit.', group: 'common' },
  {
    name: 'batch',
    long: 'batch',
    kind: 'flag',
    help: 'Never prompt: warnings are printed and accepted.',
    group: 'common',
  },
  {
    name: 'debug',
    long: 'debug',
    kind: 'flag',
    help: 'Print each step and, on failure, the cause chain and stack (never secrets).',
    group: 'common',
  },
  {
    name: 'quiet',
    long: 'quiet',
    short: 'q',
    kind: 'flag',
    help: 'Print nothing but errors.',
    group: 'common',
  },
  {
    name: 'json',
    long: 'json',
    kind: 'flag',
    help: 'Print newline-delimited JSON events on stdout instead of text.',
    group: 'common',
  },
];

/**
 * The parsed command line. Reading a name the command did not declare throws (a typo is a bug
 * found on the first run, not a flag silently ignored); an option not given has its typed
 * `defaultValue`, if any.
 */
export class ParsedOptions {
  private readonly declared: Map<string, OptionSpec>;

  constructor(
    readonly command: CommandSpec,
    private readonly given: Map<string, OptionValue>,
    readonly positionals: readonly string[],
  ) {
    this.declared = new Map(allOptions(command).map((o) => [o.name, o]));
  }

  /** Whether the command declares this option (for helpers shared by several commands). */
  declares(name: string): boolean {
    return this.declared.has(name);
  }

  /** Whether the option was given on the command line (defaults do not count). */
  has(name: string): boolean {
    this.spec(name);
    return this.given.has(name);
  }

  private spec(name: string): OptionSpec {
    const spec = this.declared.get(name);
    if (!spec) throw new Error(`${this.command.name} declares no option named '${name}'`);
    return spec;
  }

  /** The given value, else the typed default. */
  private value(name: string): OptionValue | undefined {
    const spec = this.spec(name);
    return this.given.get(name) ?? spec.defaultValue;
  }

  str(name: string): string | undefined {
    const v = this.value(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new Error(`option ${name} is not a string option`);
    return v;
  }

  int(name: string): number | undefined {
    const v = this.value(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'number') throw new Error(`option ${name} is not an integer option`);
    return v;
  }

  flag(name: string): boolean {
    const v = this.value(name);
    if (v === undefined) return false;
    if (typeof v !== 'boolean') throw new Error(`option ${name} is not a flag`);
    return v;
  }

  /** A flag's value when given, else undefined (for `--[no-]X` with a default elsewhere). */
  flagIfGiven(name: string): boolean | undefined {
    return this.has(name) ? this.flag(name) : undefined;
  }

  list(name: string): string[] {
    const v = this.value(name);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new Error(`option ${name} is not a list option`);
    return v;
  }
}

/** The options of a command including the common ones, in help order. */
export function allOptions(spec: CommandSpec): OptionSpec[] {
  return [...spec.options, ...commonOptions];
}

const VALUE_TYPE: Record<OptionKind, string> = {
  string: 'string',
  int: 'number',
  flag: 'boolean',
  list: 'array',
};

/** A command's table is a programming error if a name repeats or a default has the wrong type. */
export function checkCommandSpec(command: CommandSpec): void {
  const seen = new Set<string>();
  for (const o of allOptions(command)) {
    if (seen.has(o.name)) throw new Error(`${command.name}: option '${o.name}' is declared twice`);
    seen.add(o.name);
    if (o.defaultValue === undefined) continue;
    const type = Array.isArray(o.defaultValue) ? 'array' : typeof o.defaultValue;
    if (type !== VALUE_TYPE[o.kind])
      throw new Error(`${command.name}: --${o.long} is ${o.kind} but its defaultValue is a ${type}`);
    if (o.required) throw new Error(`${command.name}: --${o.long} is required and has a defaultValue`);
  }
}

/** How a typed default reads in help. */
function showDefault(value: OptionValue): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (Array.isArray(value)) return value.join(',');
  return String(value);
}

/** Ruby `Integer()` syntax: sign, 0x/0b/0o or leading-0 octal, `_` separators. */
export function parseRubyInteger(text: string): number | undefined {
  const m = /^([+-]?)(0x[0-9a-f_]+|0b[01_]+|0o?[0-7_]*|[1-9][0-9_]*)$/i.exec(text.trim());
  if (!m) return undefined;
  const body = m[2]!.replace(/_/g, '');
  if (/__|_$/.test(m[2]!)) return undefined;
  let value: number;
  const lower = body.toLowerCase();
  if (lower.startsWith('0x')) value = parseInt(lower.slice(2), 16);
  else if (lower.startsWith('0b')) value = parseInt(lower.slice(2), 2);
  else if (lower.startsWith('0o')) value = parseInt(lower.slice(2), 8);
  else if (lower.startsWith('0') && lower.length > 1) value = parseInt(lower.slice(1), 8);
  else value = parseInt(lower, 10);
  if (!Number.isSafeInteger(value)) return undefined;
  return m[1] === '-' ? -value : value;
}

function findLong(options: readonly OptionSpec[], given: string): { spec: OptionSpec; negated: boolean } {
  const want = given.toLowerCase();
  const candidates: { spec: OptionSpec; name: string; negated: boolean }[] = [];
  for (const spec of options) {
    for (const name of [spec.long, ...(spec.aliases ?? [])]) {
      candidates.push({ spec, name, negated: false });
      if (spec.negatable) candidates.push({ spec, name: `no-${name}`, negated: true });
    }
  }
  const exact = candidates.find((c) => c.name === want);
  if (exact) return exact;
  const prefixed = candidates.filter((c) => c.name.startsWith(want));
  const distinct = new Set(prefixed.map((c) => `${c.spec.name}:${c.negated}`));
  if (distinct.size === 1) return prefixed[0]!;
  if (distinct.size > 1) {
    const names = [...new Set(prefixed.map((c) => `--${c.name}`))].join(', ');
    throw new UsageError(`ambiguous option: --${given} (could be ${names})`);
  }
  throw new UsageError(`invalid option: --${given}`);
}

function checkPath(spec: OptionSpec, value: string): void {
  if (!spec.path) return;
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(value);
  } catch {
    st = undefined;
  }
  const opt = `--${spec.long}`;
  if (spec.path === 'dir') {
    if (!st?.isDirectory())
      throw new MissingFileError(
        `${opt} has invalid value '${value}': Directory does not exist or is not a directory.`,
      );
    return;
  }
  if (!st?.isFile())
    throw new MissingFileError(`${opt} has invalid value '${value}': File does not exist or is not a file.`);
  try {
    fs.accessSync(value, spec.path === 'exec' ? fs.constants.X_OK : fs.constants.R_OK);
  } catch {
    const what = spec.path === 'exec' ? 'File not executable.' : 'File is not readable.';
    throw new MissingFileError(`${opt} has invalid value '${value}': ${what}`);
  }
}

function convert(spec: OptionSpec, raw: string): OptionValue {
  const opt = `--${spec.long}`;
  switch (spec.kind) {
    case 'int': {
      const n = parseRubyInteger(raw);
      if (n === undefined) throw new UsageError(`invalid argument: ${opt} ${raw} (expected an integer)`);
      return n;
    }
    case 'list':
      if (spec.split === false) return [raw];
      return raw.split(',').filter((s) => s.length > 0);
    default: {
      if (spec.choices) {
        const lower = raw.toLowerCase();
        const exact = spec.choices.find((c) => c.toLowerCase() === lower);
        const matches = exact ? [exact] : spec.choices.filter((c) => c.toLowerCase().startsWith(lower));
        if (matches.length !== 1 || raw === '')
          throw new UsageError(
            `${opt} has invalid value '${raw}': Please specify one of these values: ${spec.choices.join(', ')}`,
          );
        return matches[0]!;
      }
      checkPath(spec, raw);
      return raw;
    }
  }
}

function store(values: Map<string, OptionValue>, spec: OptionSpec, value: OptionValue): void {
  if (spec.kind === 'list' && spec.accumulate) {
    const prev = values.get(spec.name);
    values.set(spec.name, [...(Array.isArray(prev) ? prev : []), ...(value as string[])]);
    return;
  }
  values.set(spec.name, value);
}

/**
 * Parses argv for a command. `--help`, `--version` and `--manual` short-circuit required-option
 * checks (the caller looks at them first). Path checks run while parsing, as in the reference.
 */
export function parseArgs(command: CommandSpec, argv: readonly string[]): ParsedOptions {
  checkCommandSpec(command);
  const options = allOptions(command);
  const values = new Map<string, OptionValue>();
  const positionals: string[] = [];
  const deferred: { spec: OptionSpec; raw: string }[] = [];

  const takeValue = (spec: OptionSpec, inline: string | undefined, i: number): [string, number] => {
    if (inline !== undefined) return [inline, i];
    if (i + 1 >= argv.length) throw new UsageError(`missing argument: --${spec.long}`);
    return [argv[i + 1]!, i + 1];
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const given = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      const inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      const { spec, negated } = findLong(options, given);
      if (spec.kind === 'flag') {
        if (inline !== undefined) throw new UsageError(`--${spec.long} takes no value (got '${inline}')`);
        values.set(spec.name, !negated);
        continue;
      }
      let raw: string;
      [raw, i] = takeValue(spec, inline, i);
      deferred.push({ spec, raw });
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // A cluster of short options: flags may be bundled (`-yq`); a value-taking option
      // consumes the rest of the word or the next word.
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const spec = options.find((o) => o.short === letter);
        if (!spec) throw new UsageError(`invalid option: -${letter}`);
        if (spec.kind === 'flag') {
          values.set(spec.name, true);
          continue;
        }
        const rest = arg.slice(j + 1);
        let raw: string;
        [raw, i] = takeValue(spec, rest.length > 0 ? rest : undefined, i);
        deferred.push({ spec, raw });
        break;
      }
      continue;
    }
    positionals.push(arg);
  }

  const wantsInfo =
    values.get('help') === true || values.get('version') === true || values.get('manual') === true;
  if (!wantsInfo) {
    for (const { spec, raw } of deferred) store(values, spec, convert(spec, raw));
    if (positionals.length > 0 && !command.positionals)
      throw new UsageError(
        `unexpected argument '${positionals[0]}': ${command.name} takes no positional arguments`,
        'quote values that contain spaces, and put an option name before every value',
      );
    for (const spec of options) {
      if (spec.required && !values.has(spec.name))
        throw new UsageError(`missing mandatory parameter: --${spec.long}`);
    }
  }
  return new ParsedOptions(command, values, positionals);
}

/** Help text: synopsis, every option with its default, then examples. */
export function formatHelp(command: CommandSpec, invokedAs: string): string {
  const lines: string[] = [];
  lines.push(`Usage: ${invokedAs} [OPTIONS]${command.positionals ? ` ${command.positionals.metavar}` : ''}`);
  lines.push('', command.summary, '');
  const groups: [string, OptionSpec[]][] = [
    ['MANDATORY PARAMETERS', command.options.filter((o) => o.required)],
    ['OPTIONAL PARAMETERS', command.options.filter((o) => !o.required)],
    ['COMMON OPTIONS', [...commonOptions]],
  ];
  for (const [title, specs] of groups) {
    if (specs.length === 0) continue;
    lines.push(title);
    for (const o of specs) {
      const names = [o.short ? `-${o.short}, ` : '    ', `--${o.negatable ? '[no-]' : ''}${o.long}`];
      const meta = o.kind === 'flag' ? '' : ` ${o.metavar ?? o.name.toUpperCase()}`;
      const left = `    ${names.join('')}${meta}`;
      let text = o.help;
      if (o.choices) text += ` One of: ${o.choices.join(', ')}.`;
      const shown = o.default ?? (o.defaultValue !== undefined ? showDefault(o.defaultValue) : undefined);
      if (shown !== undefined) text += ` Default: ${shown}.`;
      if (o.noop) text += ` (Accepted, no effect: ${o.noop})`;
      if (o.aliases?.length) text += ` Also: ${o.aliases.map((a) => `--${a}`).join(', ')}.`;
      lines.push(left.length >= 36 ? `${left}\n${' '.repeat(36)}${text}` : `${left.padEnd(36)}${text}`);
    }
    lines.push('');
  }
  if (command.positionals) lines.push(`${command.positionals.metavar}: ${command.positionals.help}`, '');
  if (command.examples.length > 0) {
    lines.push('EXAMPLES');
    for (const e of command.examples) lines.push(`    ${e}`);
    lines.push('');
  }
  return lines.join('\n');
}
