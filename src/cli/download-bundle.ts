// `amibundle download-bundle` / `ec2-download-bundle`: flags -> downloadBundle().
import path from 'node:path';
import { UsageError } from '../errors.js';
import { bucketOption, connectionFromOptions, s3ToolConnectionOptions } from './s3-flags.js';
import { downloadBundle } from '../s3/download-bundle.js';
import { checkPlainName, parseBucketArg } from '../s3/location.js';
import type { Command } from './command.js';
import { flag } from './flag-catalog.js';

export const downloadBundleCommand: Command = {
  spec: {
    name: 'download-bundle',
    tool: 'ec2-download-bundle',
    summary: 'Download a bundle from S3: parts in parallel, each SHA-1 checked as it lands.',
    options: [
      bucketOption('Bucket, optionally followed by the key prefix of the bundle.'),
      ...s3ToolConnectionOptions,
      flag('privatekey', {
        help: 'Your RSA private key. Accepted for compatibility: only pre-2007 encrypted manifests needed it, and amibundle does not read those.',
      }),
      flag('manifest', {
        metavar: 'NAME',
        path: undefined,
        default: 'PREFIX.manifest.xml',
        help: "The manifest's object name under the key prefix (no '/'); also the local file name.",
      }),
      flag('prefix', {
        default: 'image',
        help: "The bundle name: the manifest is PREFIX.manifest.xml (no '/').",
      }),
      flag('directory', {
        defaultValue: '.',
        default: 'the current directory',
        help: 'Directory to download into.',
      }),
    ],
    examples: [
      'ec2-download-bundle -b my-bucket/images -m image.manifest.xml -k pk.pem -d /mnt/restore',
      'amibundle download-bundle -b my-bucket -p my-ami --concurrency 16 -d /var/tmp',
    ],
    manual: `Downloads a bundle's manifest and parts from S3. Parts are fetched in parallel (--concurrency,
default 8) and each one's SHA-1 is checked against the manifest as it arrives: a damaged part is
fetched again (up to 3 times, more with --retry), then the run fails with a clear message. Every
file is written under a temporary name and renamed when complete, so a part file on disk is always
whole; parts already on disk with the right SHA-1 are not fetched again, which makes a repeated
run resume. The manifest is written last.`,
  },

  async run(opts, ctx) {
    const source = parseBucketArg(opts.str('bucket')!);
    const connection = connectionFromOptions(opts, ctx.out);
    const manifest = opts.str('manifest');
    const prefix = opts.str('prefix');
    if (manifest !== undefined && prefix !== undefined)
      throw new UsageError('--prefix and --manifest may not both be provided');
    const manifestName =
      manifest !== undefined
        ? checkPlainName(manifest, '--manifest')
        : `${checkPlainName(prefix ?? 'image', '--prefix')}.manifest.xml`;
    const directory = path.resolve(opts.str('directory')!);
    ctx.out.event({
      type: 'start',
      command: 'download-bundle',
      bucket: source.bucket,
      manifest: manifestName,
    });
    await downloadBundle({ source, manifestName, directory, connection, out: ctx.out, signal: ctx.signal });
  },
};
