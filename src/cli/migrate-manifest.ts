// `amibundle migrate-manifest` / `ec2-migrate-manifest`: flags (and the EC2 certificate they
// choose) -> migrateManifestFile(), which backs up to P.bak and replaces P atomically.
import fs from 'node:fs';
import { findEc2Cert, type Partition } from '../crypto/ec2-cert.js';
import { UsageError } from '../errors.js';
import { migrateManifestFile } from '../migrate/migrate-file.js';
import type { Command } from './command.js';
import { flag } from './flag-catalog.js';
import { manifestOption, privateKeyOption } from './restore-flags.js';

const PARTITIONS: readonly Partition[] = ['aws', 'aws-cn', 'aws-us-gov'];

/** The partition a region is in, which decides the EC2 certificate when none is named. */
export function partitionOfRegion(region: string): Partition {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

export const migrateManifestCommand: Command = {
  spec: {
    name: 'migrate-manifest',
    tool: 'ec2-migrate-manifest',
    summary:
      "Re-wrap a bundle's key for another EC2 certificate (partition), change kernel/ramdisk, re-sign; keeps P.bak.",
    options: [
      flag('cert', {
        required: true,
        help: 'Your certificate (PEM): the existing signature must verify with it.',
      }),
      privateKeyOption(
        "Your private key (PEM): unwraps the bundle's key to re-wrap it for EC2, and re-signs.",
        true,
      ),
      manifestOption('The manifest to migrate; rewritten in place, the original kept as PATH.bak.', true),
      flag('accessKey', {
        short: 'a',
        metavar: 'USER',
        noop: 'only the retired automatic mapping used it',
        help: 'AWS access key id.',
      }),
      flag('secretKey', {
        short: 's',
        metavar: 'PASSWORD',
        noop: 'only the retired automatic mapping used it',
      }),
      flag('ec2cert', {
        default: "the certificate of --partition, else of --region's partition, else aws",
        help: "The target EC2 certificate: the bundle's key and IV are wrapped to it anew (ec2-ami-tools ignored this flag).",
      }),
      {
        name: 'partition',
        long: 'partition',
        kind: 'string',
        metavar: 'PARTITION',
        choices: PARTITIONS,
        default: "--region's partition, else aws",
        help: 'Use the EC2 certificate of this partition (shipped with amibundle, or from $EC2_AMITOOL_HOME).',
      },
      flag('kernel', {
        metavar: 'KERNEL_ID',
        help: "The kernel id (aki-…) for the target region; '' removes it.",
      }),
      flag('ramdisk', {
        metavar: 'RAMDISK_ID',
        help: "The ramdisk id (ari-…) for the target region; '' removes it.",
      }),
      {
        name: 'mapping',
        long: 'mapping',
        kind: 'flag',
        negatable: true,
        defaultValue: true,
        default: 'on, which fails when the manifest has a kernel or ramdisk not given explicitly',
        help: 'Automatic kernel/ramdisk mapping is not supported (the API it used is gone): pass --kernel/--ramdisk, or --no-mapping to drop the ids not given.',
      },
      {
        name: 'signUnverified',
        long: 'sign-unverified',
        kind: 'flag',
        help: 'Re-sign even when the existing signature does not verify with -c (only for a legacy manifest whose origin you know): migrating signs it with your key.',
      },
      flag('region', {
        help: "The target region, e.g. cn-north-1: picks its partition's EC2 certificate and is named in the final message.",
      }),
    ],
    examples: [
      'ec2-migrate-manifest -m /mnt/bundle/image.manifest.xml -c cert.pem -k pk.pem --region cn-north-1 --kernel aki-12345678',
      'amibundle migrate-manifest -m image.manifest.xml -c cert.pem -k pk.pem --partition aws-us-gov --no-mapping --batch',
    ],
    manual: `Rewrites a local bundle manifest for use in another region or partition, keeping the original as
PATH.bak. Steps:

  * read the manifest (versions 3, 2007-08-29 and 2007-10-10) and check its signature with -c,
    over the file's own bytes and, failing that, over ec2-ami-tools' re-serialised form;
    failure: "Bad manifest 'PATH': Manifest fails authentication." (exit 254). Migration signs
    the result with your key, so only a manifest that verified is re-signed; --sign-unverified
    re-signs one that does not (a legacy manifest signed by a key you no longer have, whose
    origin you know), with a warning. The manifest must still have the one layout the reader
    accepts: a single <machine_configuration> and <image> directly under <manifest>;
  * refuse (exit 2) if PATH.bak exists, before anything is changed;
  * choose the kernel and ramdisk: --kernel/--ramdisk win; ids not given are dropped with
    --no-mapping (after a confirmation, which --batch accepts). Automatic mapping is NOT
    supported: ec2-ami-tools found matching ids through EC2 API calls (Signature Version 1) that
    AWS has retired, so a manifest with a kernel or ramdisk needs --kernel/--ramdisk or
    --no-mapping (exit 1 otherwise); -a and -s are accepted and ignored;
  * unwrap the bundle's AES key and IV from the user copies with -k and wrap them again to the
    target EC2 certificate (--ec2cert, else the shipped certificate of --partition or --region's
    partition). ec2-ami-tools accepted --ec2cert but never used it, so its migrated manifests
    could not be decrypted by EC2 in a partition with another key; amibundle re-wraps. The
    user copies are kept as they are;
  * rebuild the manifest as version 2007-10-10 (older versions get type "machine", version 3
    also architecture "i386"), bundler fields copied, sign it with -k;
  * copy the original to PATH.bak, then replace PATH in one step (temporary file + rename).

The parts are not touched: the same parts work with the migrated manifest.`,
  },

  async run(opts, ctx) {
    const file = opts.str('manifest')!;
    const region = opts.str('region');
    const explicitEc2 = opts.str('ec2cert');
    const partitionFlag = opts.str('partition') as Partition | undefined;
    if (region !== undefined && !/^[a-z]{2}(-[a-z0-9]+)+$/.test(region))
      throw new UsageError(
        `--region has invalid value '${region}': expected a region name such as eu-west-1`,
      );
    if (explicitEc2 && partitionFlag)
      throw new UsageError('--ec2cert and --partition may not both be provided');
    if (partitionFlag && region && partitionOfRegion(region) !== partitionFlag)
      throw new UsageError(
        `--region ${region} is in partition ${partitionOfRegion(region)}, not --partition ${partitionFlag}`,
      );
    if (opts.has('accessKey') || opts.has('secretKey'))
      ctx.out.warn('-a/-s are ignored: they served only the automatic mapping, which is not supported');
    const partition = partitionFlag ?? (region ? partitionOfRegion(region) : 'aws');
    const ec2CertPath = findEc2Cert(explicitEc2, partition);
    const privateKeyPem = fs.readFileSync(opts.str('privatekey')!, 'utf8');
    const userCertPem = fs.readFileSync(opts.str('cert')!, 'utf8');
    const ec2CertPem = fs.readFileSync(ec2CertPath, 'utf8');
    const kernel = opts.str('kernel');
    const ramdisk = opts.str('ramdisk');
    const migrated = await migrateManifestFile({
      file,
      privateKeyPem,
      userCertPem,
      ec2CertPem,
      signUnverified: opts.flag('signUnverified'),
      mapping: opts.flag('mapping'),
      ...(kernel !== undefined ? { kernel } : {}),
      ...(ramdisk !== undefined ? { ramdisk } : {}),
      confirm: (q) => ctx.confirm(q),
      out: ctx.out,
    });
    const where =
      region ?? (explicitEc2 ? `regions whose EC2 certificate is ${explicitEc2}` : `partition ${partition}`);
    ctx.out.info(`Successfully migrated ${file}`);
    ctx.out.info(`It is now suitable for use in ${where}.`);
    ctx.out.event({
      type: 'done',
      command: 'migrate-manifest',
      manifest: file,
      backup: migrated.backup,
      sourceVersion: migrated.sourceVersion,
      signatureCheckedOver: migrated.signatureCheckedOver,
      ec2Cert: ec2CertPath,
      partition: explicitEc2 ? undefined : partition,
      region,
      kernelId: migrated.kernelId,
      ramdiskId: migrated.ramdiskId,
      removed: migrated.removed,
    });
  },
};
