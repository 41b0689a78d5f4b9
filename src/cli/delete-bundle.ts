// `amibundle delete-bundle` / `ec2-delete-bundle`: flags -> deleteBundle().
import fs from 'node:fs';
import { MissingFileError, UsageError } from '../errors.js';
import { bucketOption, connectionFromOptions, s3ToolConnectionOptions } from './s3-flags.js';
import { deleteBundle, type DeleteSelection } from '../s3/delete-bundle.js';
import { checkPlainName, parseBucketArg } from '../s3/location.js';
import type { Command } from './command.js';
import { flag } from './flag-catalog.js';

export const deleteBundleCommand: Command = {
  spec: {
    name: 'delete-bundle',
    tool: 'ec2-delete-bundle',
    summary: "Delete a bundle's objects from S3, chosen by its manifest or by name prefix.",
    options: [
      bucketOption('Bucket, optionally followed by the key prefix of the bundle.'),
      ...s3ToolConnectionOptions,
      flag('manifest', {
        path: undefined,
        help: "The bundle's manifest: a local file, or else the name of the manifest in S3 under the key prefix. Deletes it and the parts it names.",
      }),
      flag('prefix', {
        help: "Bundle name (no '/'): deletes PREFIX.part.N, PREFIX.manifest and PREFIX.manifest.xml found by listing (all pages).",
      }),
      {
        name: 'clear',
        long: 'clear',
        kind: 'flag',
        help: 'Afterwards delete the bucket (only if it is then empty).',
      },
      {
        name: 'yes',
        long: 'yes',
        short: 'y',
        kind: 'flag',
        help: 'Do not ask for confirmation (--batch does not ask either).',
      },
    ],
    examples: [
      'ec2-delete-bundle -b my-bucket/images -m /tmp/image.manifest.xml -y',
      'amibundle delete-bundle -b my-bucket -p my-ami --batch',
    ],
    manual: `Deletes the objects of one bundle. With -m, the manifest (a local file, or the object of that name
under the key prefix) says which parts to delete; with -p, the bucket is listed (every page, so
bundles of more than 1000 objects are found whole) and NAME.part.N, NAME.manifest and
NAME.manifest.xml are selected. The list is shown and confirmed (unless -y or --batch), then
deleted 1000 keys per request, the manifest first. --clear then removes the bucket if it is empty.`,
  },

  async run(opts, ctx) {
    const target = parseBucketArg(opts.str('bucket')!);
    const connection = connectionFromOptions(opts, ctx.out);
    const manifest = opts.str('manifest');
    const prefix = opts.str('prefix');
    if (manifest !== undefined && prefix !== undefined)
      throw new UsageError('--prefix and --manifest may not both be provided');
    let select: DeleteSelection;
    if (prefix !== undefined) select = { kind: 'prefix', prefix: checkPlainName(prefix, '--prefix') };
    else if (manifest === undefined)
      throw new UsageError('missing mandatory parameter: --manifest or --prefix');
    else if (fs.existsSync(manifest)) select = { kind: 'local-manifest', path: manifest };
    else if (!manifest.includes('/'))
      select = { kind: 's3-manifest', name: checkPlainName(manifest, '--manifest') };
    else
      throw new MissingFileError(
        `--manifest has invalid value '${manifest}': File does not exist or is not a file.`,
      );
    const yes = opts.flag('yes');
    await deleteBundle({
      target,
      select,
      clear: opts.flag('clear'),
      confirm: (question) => (yes ? Promise.resolve(true) : ctx.confirm(question)),
      connection,
      out: ctx.out,
      signal: ctx.signal,
    });
    ctx.out.info(`${ctx.invokedAs} complete.`);
  },
};
