// `amibundle from-ebs SNAPSHOT`: an EBS snapshot back as a disk image (-o FILE, raw or any
// --format the restore writes) or as an instance-store bundle (--bundle, for archiving). Flags in,
// ebs/snapshot-to-file.ts does the work (and says why --bundle goes through a sparse raw file).
import type { DiskFormat } from '../disk/image-sink.js';
import { checkOutputName, snapshotToBundle, snapshotToImage } from '../ebs/snapshot-to-file.js';
import { checkEbsSetup, createEbsClients } from '../ebs/clients.js';
import type { EbsConnectionConfig } from '../ebs/connection.js';
import { SNAPSHOT_ID, waitForCompleted, type ReadOptions, type SnapshotFacts } from '../ebs/read-snapshot.js';
import { UsageError } from '../errors.js';
import { formatBytes } from '../format-bytes.js';
import {
  bundleNameFromFlags,
  bundleOptionsFromFlags,
  bundlingOptions,
  credentialOptions,
  reportMappingGaps,
} from './bundle-flags.js';
import type { Command, RunContext } from './command.js';
import { ebsConnectionFromOptions, ebsConnectionOptions } from './ebs-flags.js';
import { flag } from './flag-catalog.js';
import type { OptionSpec, ParsedOptions } from './options.js';

const GIB = 2 ** 30;

/** -k/-c/-u are needed only with --bundle. */
const bundleCredentialOptions: OptionSpec[] = credentialOptions.map((o) => ({
  ...o,
  required: false,
  help: `With --bundle: ${o.help}`,
}));

const bundleOnlyOptions: OptionSpec[] = bundlingOptions.map((o) => ({
  ...o,
  help: `With --bundle: ${o.help}`,
}));

/** --bundle: the bundle-image flags resolved (-k/-c/-u were checked up front), then the library call. */
async function toBundle(read: ReadOptions, facts: SnapshotFacts, opts: ParsedOptions, ctx: RunContext) {
  const base = await bundleOptionsFromFlags(opts, ctx);
  const r = await snapshotToBundle(read, facts, base, bundleNameFromFlags(opts) ?? facts.id);
  for (const p of r.parts) ctx.out.info(`Created ${p}`);
  reportMappingGaps(base.blockDeviceMapping, ctx);
  return r;
}

export const fromEbsCommand: Command = {
  spec: {
    name: 'from-ebs',
    summary: 'Read an EBS snapshot back (EBS direct): a disk image (raw, qcow2, VMDK, VHD) or a bundle.',
    positionals: { metavar: 'SNAPSHOT', help: 'The snapshot id (snap-…).' },
    options: [
      {
        name: 'output',
        long: 'output',
        short: 'o',
        kind: 'string',
        metavar: 'FILE',
        help: 'Write the snapshot as this disk image (sparse: holes where the snapshot has no data).',
      },
      flag('format', {
        help: 'Disk format of -o FILE: raw, qcow2, vmdk (streamOptimized), vhd (dynamic) or vhd-fixed; FILE must end in .qcow2, .vmdk or .vhd for those. Written straight from the blocks, never through a raw copy.',
      }),
      {
        name: 'bundle',
        long: 'bundle',
        kind: 'flag',
        help: 'Make an instance-store bundle of the snapshot instead (parts and signed manifest in -d), named by -p (default: the snapshot id). Needs -k, -c, -u.',
      },
      flag('prefix', {
        default: 'the snapshot id',
        help: 'With --bundle: bundle name (NAME.manifest.xml, NAME.part.N and the file name inside).',
      }),
      {
        name: 'wait',
        long: 'wait',
        kind: 'flag',
        negatable: true,
        default: 'on',
        help: 'Wait while the snapshot is pending (EBS direct reads only completed snapshots); --no-wait refuses a pending one.',
      },
      ...ebsConnectionOptions,
      ...bundleCredentialOptions,
      ...bundleOnlyOptions,
    ],
    examples: [
      'amibundle from-ebs snap-0123456789abcdef0 -o disk.img',
      'amibundle from-ebs snap-0123456789abcdef0 -o disk.qcow2 --format qcow2 --region eu-west-1',
      'amibundle from-ebs snap-0123456789abcdef0 --bundle -k pk.pem -c cert.pem -u 123456789012 -d /mnt/bundle -p my-ami',
    ],
    manual: `Reads a completed EBS snapshot with the EBS direct APIs, no instance or volume needed. Credentials,
region and endpoint come from the AWS SDK's default chain (as for the S3 commands), or --region and
--endpoint-url. A pending snapshot cannot be read: from-ebs waits until it is completed (or with
--no-wait refuses it); a snapshot in state error, or archived, is refused.

ListSnapshotBlocks is read page by page and GetSnapshotBlock runs in parallel, --concurrency blocks
in flight (memory is about that many x 512 KiB). Every block's SHA-256 is checked against the
checksum AWS sends with it; a corrupt block is fetched again, and refused when it stays corrupt.
Failed requests are retried (5xx, throttling, dropped or stalled connections) with back-off, at most
--attempts times; access denied and validation errors are not. Blocks the snapshot does not list are
holes in the output, so a 100 GiB snapshot holding 2 GiB of data costs 2 GiB of reads and disk.

-o FILE writes the image under a temporary name and renames it to FILE only when every block
arrived and checked out. --format qcow2, vmdk, vhd or vhd-fixed writes that format straight from
the blocks; FILE then ends in .qcow2, .vmdk or .vhd. --bundle makes an instance-store bundle of the
snapshot (the bundle-image flags apply), through a sparse temporary raw image in -d that is removed
afterwards.`,
  },

  async run(opts, ctx) {
    if (opts.positionals.length !== 1)
      throw new UsageError(
        opts.positionals.length === 0
          ? 'missing SNAPSHOT: give the snapshot id (snap-…)'
          : `from-ebs takes one SNAPSHOT, not ${opts.positionals.length}`,
      );
    const snapshotId = opts.positionals[0]!;
    if (!SNAPSHOT_ID.test(snapshotId))
      throw new UsageError(
        `SNAPSHOT '${snapshotId}' is not a snapshot id: give snap- and 8 or 17 hex digits`,
      );
    const output = opts.str('output');
    const bundle = opts.flag('bundle');
    if (output !== undefined && bundle) throw new UsageError('--output and --bundle may not both be given');
    if (output === undefined && !bundle)
      throw new UsageError('missing --output FILE (or --bundle to make a bundle)');
    const format = (opts.str('format') ?? 'raw') as DiskFormat;
    if (bundle && opts.has('format')) throw new UsageError('--format applies to --output, not to --bundle');
    if (bundle)
      for (const o of credentialOptions)
        if (opts.str(o.name) === undefined)
          throw new UsageError(`missing mandatory parameter with --bundle: --${o.long} (-${o.short})`);
    if (output !== undefined) checkOutputName(output, format);

    const conn: EbsConnectionConfig = ebsConnectionFromOptions(opts);
    const clients = createEbsClients(conn);
    try {
      await checkEbsSetup(clients, conn);
      const read: ReadOptions = { clients, conn, signal: ctx.signal, out: ctx.out };
      const facts = await waitForCompleted(read, snapshotId, opts.flagIfGiven('wait') ?? true);
      ctx.out.event({
        type: 'start',
        command: 'from-ebs',
        snapshotId,
        volumeSize: facts.volumeGiB * GIB,
      });
      ctx.out.info(
        `Reading snapshot ${snapshotId} (${facts.volumeGiB} GiB${facts.encrypted ? ', encrypted' : ''})...`,
      );
      const started = process.hrtime.bigint();
      const r =
        output !== undefined
          ? await snapshotToImage(read, facts, output, format)
          : await toBundle(read, facts, opts, ctx);
      if ('replaced' in r && r.replaced) ctx.out.info(`Replaced the existing ${r.written} (${r.replaced})`);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      ctx.out.info(
        `${bundle ? 'Bundle manifest is' : 'Wrote'} ${r.written} (${facts.volumeGiB} GiB, ${r.stats.blocks} blocks = ${formatBytes(r.stats.dataBytes)} of data, ${r.stats.getRequests} GetSnapshotBlock requests)`,
      );
      ctx.out.event({
        type: 'done',
        command: 'from-ebs',
        snapshotId,
        ...(bundle ? { manifest: r.written } : { image: r.written, format }),
        size: facts.volumeGiB * GIB,
        blocks: r.stats.blocks,
        dataBytes: r.stats.dataBytes,
        pages: r.stats.pages,
        getRequests: r.stats.getRequests,
        checksumRetries: r.stats.checksumRetries,
        seconds,
      });
      ctx.out.info('from-ebs complete.');
    } finally {
      clients.destroy();
    }
  },
};
