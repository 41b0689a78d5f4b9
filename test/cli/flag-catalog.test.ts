// The flag catalog and the parser's side of it: a name the command did not declare throws,
// typed defaults are applied by the parser (and shown in help), and per-command overrides change
// only what they name. Also checks every command's table and the flag names its file reads.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { flag, flagCatalog, flags, type FlagName } from '../../src/cli/flag-catalog.js';
import {
  checkCommandSpec,
  formatHelp,
  parseArgs,
  type CommandSpec,
  type OptionSpec,
} from '../../src/cli/options.js';
import { commands } from '../../src/cli/registry.js';
import { UsageError } from '../../src/errors.js';
import { DEFAULT_CONCURRENCY } from '../../src/s3/connection.js';
import { projectRoot } from '../support/fixtures.js';

const command = (options: OptionSpec[]): CommandSpec => ({
  name: 'test-command',
  summary: '',
  options,
  examples: [],
  manual: '',
});

describe('reading a flag the command did not declare', () => {
  const spec = command([flag('destination'), flag('manifest')]);

  it('throws for every accessor, naming the flag and the command', () => {
    const opts = parseArgs(spec, ['-d', '.']);
    for (const read of [
      () => opts.str('destinaton'),
      () => opts.int('concurrency'),
      () => opts.flag('retry'),
      () => opts.flagIfGiven('inherit'),
      () => opts.list('blockDeviceMapping'),
      () => opts.has('privatekey'),
    ])
      expect(read).toThrow(/test-command declares no option named/);
  });

  it('returns undefined for a declared flag that was not given and has no default', () => {
    const opts = parseArgs(spec, []);
    expect(opts.str('manifest')).toBeUndefined();
    expect(opts.has('manifest')).toBe(false);
    expect(opts.declares('manifest')).toBe(true);
    expect(opts.declares('user')).toBe(false);
    // The common flags are declared by every command.
    expect(opts.flag('batch')).toBe(false);
  });
});

describe('typed defaults', () => {
  const spec = command([
    flag('destination'),
    flag('concurrency'),
    flag('inherit'),
    { name: 'names', long: 'names', kind: 'list', defaultValue: ['a', 'b'], help: 'Names.' },
  ]);

  it('are applied by the parser when the flag is absent, with their type', () => {
    const opts = parseArgs(spec, []);
    expect(opts.str('destination')).toBe('/tmp');
    expect(opts.int('concurrency')).toBe(DEFAULT_CONCURRENCY);
    expect(opts.flag('inherit')).toBe(true);
    expect(opts.list('names')).toEqual(['a', 'b']);
    // A default is not "given": has() and flagIfGiven() still tell the user's choices apart.
    expect(opts.has('destination')).toBe(false);
    expect(opts.flagIfGiven('inherit')).toBeUndefined();
  });

  it('give way to the command line', () => {
    const opts = parseArgs(spec, ['-d', '.', '--concurrency', '3', '--no-inherit', '--names', 'c']);
    expect(opts.str('destination')).toBe('.');
    expect(opts.int('concurrency')).toBe(3);
    expect(opts.flag('inherit')).toBe(false);
    expect(opts.list('names')).toEqual(['c']);
    expect(opts.has('destination')).toBe(true);
  });

  it('are shown in help, unless words describe them', () => {
    const help = formatHelp(spec, 'test-command');
    expect(help).toMatch(
      /--destination PATH +Directory the parts and manifest are written to\. Default: \/tmp\./,
    );
    expect(help).toContain(`Default: ${DEFAULT_CONCURRENCY}.`);
    expect(help).toMatch(/--\[no-\]inherit .* Default: on\./);
    expect(help).toContain('Names. Default: a,b.');
    const worded = formatHelp(
      command([flag('destination', { default: 'the current directory', defaultValue: '.' })]),
      'x',
    );
    expect(worded).toContain('Default: the current directory.');
  });

  it('must have the type of their kind, and a required flag has none', () => {
    expect(() => parseArgs(command([flag('concurrency', { defaultValue: '8' })]), [])).toThrow(
      /--concurrency is int but its defaultValue is a string/,
    );
    expect(() => parseArgs(command([flag('retry', { defaultValue: 'yes' })]), [])).toThrow(/is flag/);
    expect(() => parseArgs(command([flag('destination', { required: true })]), [])).toThrow(
      /required and has a defaultValue/,
    );
    expect(() => parseArgs(command([flag('manifest'), flag('manifest')]), [])).toThrow(/declared twice/);
  });
});

describe('per-command overrides', () => {
  it('change required-ness, help and the default, and leave the catalog as it was', () => {
    const spec = command([
      flag('privatekey', { required: true, help: 'The key to open the bundle with.' }),
      flag('destination', { defaultValue: '.', metavar: 'DIRECTORY' }),
    ]);
    expect(() => parseArgs(spec, [])).toThrow(UsageError);
    expect(() => parseArgs(spec, [])).toThrow('missing mandatory parameter: --privatekey');
    expect(parseArgs(spec, ['-k', path.join(projectRoot, 'package.json')]).str('destination')).toBe('.');
    const help = formatHelp(spec, 'x');
    expect(help).toMatch(/MANDATORY PARAMETERS\n +-k, --privatekey PATH +The key to open the bundle with\./);
    expect(help).toContain('-d, --destination DIRECTORY');
    expect(flagCatalog.privatekey.required).toBeUndefined();
    expect(flagCatalog.destination.defaultValue).toBe('/tmp');
    expect(flag('privatekey').help).toBe(flagCatalog.privatekey.help);
  });

  it('can drop the short name and rename the parsed key', () => {
    const spec = command([
      flag('verifyCert'),
      flag('privatekey', { name: 'keyOut', short: undefined, path: undefined }),
    ]);
    expect(() => parseArgs(spec, ['-k', 'x'])).toThrow('invalid option: -k');
    const opts = parseArgs(spec, ['--privatekey', 'out.pem']);
    expect(opts.str('keyOut')).toBe('out.pem');
    expect(() => opts.str('privatekey')).toThrow(/declares no option named 'privatekey'/);
  });

  it('flags() takes several unchanged, in order', () => {
    const names: FlagName[] = ['kernel', 'ramdisk', 'acl'];
    expect(flags(...names).map((o) => o.long)).toEqual(['kernel', 'ramdisk', 'acl']);
  });
});

describe('every command', () => {
  /** `opts.str('x')`, `opts.flag("x")`, … as written in a command's own file. */
  const READ = /\bopts\.(?:str|int|flag|flagIfGiven|list|has)\(\s*['"]([^'"]+)['"]/g;

  it('has a consistent table, and its file reads only flags it declares', async () => {
    let scanned = 0;
    for (const entry of commands) {
      const { spec } = await entry.load();
      expect(() => checkCommandSpec(spec), entry.name).not.toThrow();
      const file = path.join(projectRoot, 'src/cli', `${entry.name}.ts`);
      if (!fs.existsSync(file)) continue;
      scanned++;
      const opts = parseArgs(spec, ['--help']);
      for (const m of fs.readFileSync(file, 'utf8').matchAll(READ))
        expect(opts.declares(m[1]!), `${entry.name} reads --${m[1]} without declaring it`).toBe(true);
    }
    expect(scanned).toBeGreaterThanOrEqual(10);
  });

  it('takes each catalog flag it declares under the catalog long name and kind', async () => {
    for (const entry of commands) {
      const { spec } = await entry.load();
      for (const o of spec.options) {
        const base = (flagCatalog as Record<string, OptionSpec>)[o.name];
        if (base)
          expect({ long: o.long, kind: o.kind }, `${entry.name} --${o.long}`).toEqual({
            long: base.long,
            kind: base.kind,
          });
      }
    }
  });
});
