// `ec2-ami-tools-version`: the ec2-ami-tools release and manifest version amibundle is compatible
// with, on the first line exactly as the reference prints them (scripts parse it), then ours.
import { compatibleAmiToolsVersion, manifestVersion, toolVersion } from '../version.js';
import type { Command } from './command.js';

export const toolsVersionCommand: Command = {
  spec: {
    name: 'ec2-ami-tools-version',
    tool: 'ec2-ami-tools-version',
    summary:
      'Print the ec2-ami-tools version amibundle is compatible with, the manifest version, and its own version.',
    options: [],
    positionals: { metavar: '[ARGS]', help: 'Ignored, as by ec2-ami-tools.' },
    examples: ['ec2-ami-tools-version'],
    manual:
      'Prints "1.5.3 20071010" (the ec2-ami-tools release and manifest format amibundle reproduces), then amibundle\'s own version.',
  },
  async run(_opts, ctx) {
    const manifest = manifestVersion.replace(/-/g, '');
    process.stdout.write(`${compatibleAmiToolsVersion} ${manifest}\n\namibundle ${toolVersion}\n\n`);
    ctx.out.event({
      type: 'done',
      command: 'ec2-ami-tools-version',
      amiTools: compatibleAmiToolsVersion,
      manifest,
      amibundle: toolVersion,
    });
  },
};
