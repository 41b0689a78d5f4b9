// `amibundle install-links DIR`: the drop-in names (ec2-bundle-vol, ec2-upload-bundle, …) as
// symbolic links in DIR, so scripts and Packer that call ec2-ami-tools run amibundle. From the
// single executable the links point at it (it acts as the tool it is started as); from an npm
// install they point at the package's bin/ scripts.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmiError, ExitCode, MissingFileError, UsageError } from '../errors.js';
import type { Command } from './command.js';
import { commands } from './registry.js';

/** What a link named `tool` should point at. */
function linkTarget(tool: string): string {
  if (isSingleExecutable()) return process.execPath;
  return fileURLToPath(new URL(`../../bin/${tool}.js`, import.meta.url));
}

/** The single executable's banner sets the root of its private copy of the package files. */
function isSingleExecutable(): boolean {
  return (globalThis as { __amibundleSeaRoot?: string }).__amibundleSeaRoot !== undefined;
}

export const installLinksCommand: Command = {
  spec: {
    name: 'install-links',
    summary: 'Make the ec2-* drop-in names as links in a directory (for the single executable).',
    options: [
      {
        name: 'force',
        long: 'force',
        short: 'f',
        kind: 'flag',
        help: 'Replace files of those names already in DIR.',
      },
    ],
    positionals: { metavar: 'DIR', help: 'Where to make the links, e.g. /usr/local/bin.' },
    examples: ['amibundle install-links /usr/local/bin', './amibundle-linux-x64 install-links ~/bin --force'],
    manual: `Makes one symbolic link per ec2-ami-tools name (${commands
      .map((c) => c.tool)
      .filter(Boolean)
      .join(
        ', ',
      )}) in DIR. Started through such a link, amibundle acts as that tool. A name already taken in DIR is
refused (nothing is changed) unless --force is given.`,
  },

  async run(opts, ctx) {
    if (opts.positionals.length !== 1) throw new UsageError('install-links takes one directory: DIR');
    const dir = opts.positionals[0]!;
    if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory())
      throw new MissingFileError(
        `install-links: ${dir} is not a directory`,
        `create it first: mkdir -p ${dir}`,
      );
    const tools = commands.map((c) => c.tool).filter((t): t is string => t !== undefined);
    const force = opts.flag('force');
    if (!force) {
      const taken = tools.filter((t) => fs.lstatSync(path.join(dir, t), { throwIfNoEntry: false }));
      if (taken.length > 0)
        throw new AmiError(
          `install-links: ${taken.map((t) => path.join(dir, t)).join(', ')} already exist${taken.length === 1 ? 's' : ''}`,
          ExitCode.missingFile,
          'pass --force to replace them',
        );
    }
    for (const tool of tools) {
      const link = path.join(dir, tool);
      // A link made beside the final name and renamed over it: never a moment without the name.
      const temp = `${link}.amibundle-${process.pid}`;
      fs.rmSync(temp, { force: true });
      fs.symlinkSync(linkTarget(tool), temp);
      fs.renameSync(temp, link);
      ctx.out.info(`${link} -> ${linkTarget(tool)}`);
    }
    ctx.out.event({ type: 'done', command: 'install-links', directory: path.resolve(dir), links: tools });
  },
};
