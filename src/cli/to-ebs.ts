// `amibundle to-ebs SOURCE`: flags -> toEbs(). SOURCE is a bundle's manifest (local or s3://) or
// a raw image file; the library does the rest (see src/ebs/to-ebs.ts).
import fs from 'node:fs';
import { journalPathFor } from '../ebs/journal.js';
import { bundleImageSource, diskImageSource, type ImageSource } from '../ebs/image-source.js';
import { toEbs } from '../ebs/to-ebs.js';
import { UsageError } from '../errors.js';
import { readManifestFile } from '../format/manifest-file.js';
import { DirPartSource } from '../parts/dir-part-source.js';
import type { RestoreResult } from '../restore/restore-options.js';
import type { Command, RunContext } from './command.js';
import { ebsConnectionFromOptions, ebsConnectionOptions } from './ebs-flags.js';
import { registerFlagsFromOptions, registerOptions } from './ebs-register-flags.js';
import { flag } from './flag-catalog.js';
import type { ParsedOptions } from './options.js';
import {
  ec2KeyOption,
  noSignatureCheckOption,
  privateKeyOption,
  signatureCertOption,
  signatureFlags,
  signatureLine,
} from './restore-flags.js';
import { s3ConnectionOptions, streamingConnectionFromOptions } from './s3-flags.js';

/** The S3 flags for an s3:// SOURCE; --region, --concurrency and --timeout are shared with EBS. */
const s3SourceOptions = s3ConnectionOptions
  .filter((s) => !['region', 'concurrency', 'timeout'].includes(s.name))
  .map((s) =>
    s.name === 'url' ? { ...s, help: 'S3 endpoint of an s3:// SOURCE (any S3-compatible server).' } : s,
  );

function isManifest(source: string): boolean {
  return /\.manifest\.xml$/i.test(source);
}

function parseTags(values: readonly string[]): { Key: string; Value: string }[] {
  return values.map((t) => {
    const eq = t.indexOf('=');
    if (eq <= 0) throw new UsageError(`--tag has invalid value '${t}': give KEY=VALUE`);
    return { Key: t.slice(0, eq), Value: t.slice(eq + 1) };
  });
}

async function openSource(
  source: string,
  opts: ParsedOptions,
  ctx: RunContext,
  onRestored: (r: RestoreResult) => void,
): Promise<{ image: ImageSource; close: () => void; certFile?: string }> {
  if (!isManifest(source)) {
    if (!fs.existsSync(source)) throw new UsageError(`SOURCE ${source} does not exist`);
    return { image: await diskImageSource(source, ctx.signal), close: () => undefined };
  }
  const key = opts.str('privatekey');
  if (key === undefined)
    throw new UsageError('missing mandatory parameter: --privatekey (-k), to decrypt the bundle of SOURCE');
  const { certFile, skipSignature } = signatureFlags(opts);
  const common = {
    privateKeyPem: fs.readFileSync(key, 'utf8'),
    useEc2Key: opts.flag('ec2Key'),
    skipSignature,
    ...(certFile ? { certPem: fs.readFileSync(certFile, 'utf8') } : {}),
    out: ctx.out,
    signal: ctx.signal,
  };
  if (source.startsWith('s3://')) {
    const s3 = await (
      await import('../s3/streaming.js')
    ).openS3PartSource(streamingConnectionFromOptions(opts, ctx.out), source, {
      out: ctx.out,
      signal: ctx.signal,
    });
    return {
      image: bundleImageSource({ ...common, manifest: s3.manifest, parts: s3 }, onRestored),
      close: () => s3.close(),
      ...(certFile ? { certFile } : {}),
    };
  }
  if (!fs.existsSync(source)) throw new UsageError(`SOURCE ${source} does not exist`);
  const manifest = readManifestFile(source);
  const dir = opts.str('source') ?? source.replace(/[^/]*$/, '') ?? '.';
  return {
    image: bundleImageSource({ ...common, manifest, parts: new DirPartSource(dir || '.') }, onRestored),
    close: () => undefined,
    ...(certFile ? { certFile } : {}),
  };
}

export const toEbsCommand: Command = {
  spec: {
    name: 'to-ebs',
    summary:
      'Upload a bundle or raw image as an EBS snapshot (EBS direct APIs), optionally registering an AMI.',
    positionals: {
      metavar: 'SOURCE',
      help: 'NAME.manifest.xml (local), s3://BUCKET/PREFIX/NAME.manifest.xml, or an image file (raw, qcow2, VMDK or VHD, told by its headers).',
    },
    options: [
      {
        name: 'size',
        long: 'size',
        kind: 'int',
        metavar: 'GiB',
        default: 'the image rounded up',
        help: 'Size of the snapshot volume in GiB.',
      },
      {
        name: 'description',
        long: 'description',
        kind: 'string',
        metavar: 'TEXT',
        help: 'Snapshot description.',
      },
      {
        name: 'tag',
        long: 'tag',
        kind: 'list',
        accumulate: true,
        split: false,
        metavar: 'KEY=VALUE',
        help: 'Tag the snapshot (repeatable; a value may hold commas).',
      },
      {
        name: 'encrypted',
        long: 'encrypted',
        kind: 'flag',
        help: 'Encrypt the snapshot (every block is then written, zero blocks included).',
      },
      {
        name: 'kmsKey',
        long: 'kms-key',
        kind: 'string',
        metavar: 'ARN',
        help: 'KMS key to encrypt with (implies --encrypted). Default: the account default EBS key.',
      },
      {
        name: 'parentSnapshot',
        long: 'parent-snapshot',
        kind: 'string',
        metavar: 'SNAPSHOT_ID',
        help: 'Incremental: write only the blocks that differ from this completed snapshot (not with --encrypted/--kms-key).',
      },
      {
        name: 'resume',
        long: 'resume',
        kind: 'flag',
        help: 'Continue the interrupted upload recorded in the journal next to SOURCE (SOURCE.to-ebs-journal) into the same pending snapshot.',
      },
      {
        name: 'register',
        long: 'register',
        kind: 'string',
        metavar: 'NAME',
        help: 'Register an HVM AMI of this name from the completed snapshot.',
      },
      {
        name: 'force',
        long: 'force',
        kind: 'flag',
        help: 'Register even an image that looks unbootable under HVM.',
      },
      ...registerOptions,
      ...ebsConnectionOptions,
      privateKeyOption('For a bundle SOURCE: the RSA private key it was made for (PEM).', false),
      flag('source', {
        default: "the manifest's directory",
        help: 'For a local manifest: the directory holding the parts.',
      }),
      ec2KeyOption,
      signatureCertOption(),
      noSignatureCheckOption,
      ...s3SourceOptions,
    ],
    examples: [
      'amibundle to-ebs image.manifest.xml -k pk.pem --register my-ami',
      'amibundle to-ebs s3://my-bucket/images/my-ami.manifest.xml -k pk.pem --tag Name=rescue --register my-ami',
      'amibundle to-ebs disk.img --encrypted --kms-key arn:aws:kms:eu-west-1:111122223333:key/…',
      'amibundle to-ebs disk.img --parent-snapshot snap-0123456789abcdef0',
      'amibundle to-ebs disk.img --resume',
    ],
    manual: `Writes an image into a new EBS snapshot through the EBS direct APIs, from anywhere: no
helper instance, no volume, no dd. A bundle is restored on the fly (signature, every part's SHA-1
and the image digest checked; the snapshot is completed only once they pass); a raw image is read
by its data extents. The image is cut into 512 KiB blocks, each sent with its SHA-256
(PutSnapshotBlock, --concurrency in flight; memory about that many x 512 KiB); CompleteSnapshot
carries the LINEAR aggregate checksum and the count of blocks written. Then to-ebs waits until
the snapshot is completed.

All-zero blocks are not sent only where that is safe: an unencrypted snapshot with no parent (or
where the parent has no data either). Encrypted snapshots get every block. With
--parent-snapshot, blocks equal to the parent's (by SHA-256) are not sent; zero blocks where the
parent had data are.

The snapshot id is printed as soon as it exists, and again on failure. The journal
SOURCE.to-ebs-journal (mode 0600, replaced atomically, no secrets) records the snapshot and the
blocks acknowledged; --resume continues into the same pending snapshot. Without --resume an
existing journal is refused.

--register NAME registers an HVM AMI with the snapshot as its root (gp3, deleted on
termination), ENA on, IMDSv2 required, boot mode from the image. An image with neither GRUB
boot code nor an EFI system partition is refused before anything is uploaded (--force
overrides). Failed requests are retried (see --attempts); exit 3 when AWS refuses.`,
  },

  async run(opts, ctx) {
    if (opts.positionals.length !== 1)
      throw new UsageError(
        'to-ebs takes one SOURCE: a manifest, s3://…/NAME.manifest.xml or a raw image file',
      );
    const sourceName = opts.positionals[0]!;
    const conn = ebsConnectionFromOptions(opts);
    const name = opts.str('register');
    const reg = registerFlagsFromOptions(opts);
    const kmsKey = opts.str('kmsKey');
    const parent = opts.str('parentSnapshot');
    if (parent !== undefined && (opts.flag('encrypted') || kmsKey !== undefined))
      throw new UsageError(
        '--parent-snapshot may not be given with --encrypted or --kms-key: AWS refuses both in one StartSnapshot; the new snapshot takes the parent encryption',
      );
    if (name === undefined && opts.flag('force'))
      throw new UsageError('--force only applies with --register');
    let restored: RestoreResult | undefined;
    const { image, close, certFile } = await openSource(sourceName, opts, ctx, (r) => (restored = r));
    ctx.out.event({ type: 'start', command: 'to-ebs', source: sourceName, size: image.size });
    const size = opts.int('size');
    const description = opts.str('description');
    const result = await toEbs({
      conn,
      source: image,
      sourceName,
      journalFile: journalPathFor(sourceName),
      resume: opts.flag('resume'),
      ...(size !== undefined ? { sizeGiB: size } : {}),
      ...(description !== undefined ? { description } : {}),
      tags: parseTags(opts.list('tag')),
      encrypted: opts.flag('encrypted'),
      ...(kmsKey !== undefined ? { kmsKeyArn: kmsKey } : {}),
      ...(parent !== undefined ? { parentSnapshotId: parent } : {}),
      ...(name !== undefined ? { register: { ...reg, name, force: opts.flag('force') } } : {}),
      ...(process.env.AMIBUNDLE_EBS_POLL_MS ? { pollMs: Number(process.env.AMIBUNDLE_EBS_POLL_MS) } : {}),
      out: ctx.out,
      signal: ctx.signal,
    }).finally(close);
    if (restored) ctx.out.info(signatureLine(restored.signature, certFile));
    if (result.imageId !== undefined)
      ctx.out.info(`Registered ${result.imageId} (${name}, boot mode ${result.bootMode ?? 'EC2 default'})`);
    ctx.out.event({
      type: 'done',
      command: 'to-ebs',
      snapshotId: result.snapshotId,
      ...(result.imageId !== undefined ? { imageId: result.imageId } : {}),
      volumeGiB: result.volumeGiB,
      ...(result.bootMode !== undefined ? { bootMode: result.bootMode } : {}),
      blocksSent: result.stats.blocksSent,
      blocksResumed: result.stats.blocksResumed,
      zeroBlocksSkipped: result.stats.zeroBlocksSkipped,
      parentBlocksKept: result.stats.parentBlocksKept,
      seconds: result.seconds,
    });
    ctx.out.info(result.imageId ?? result.snapshotId);
  },
};
