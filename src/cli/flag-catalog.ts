// The one catalog of flags that more than one command takes: each is defined here once, with
// its short name, metavar, help text and typed default, so that `-k` means the same thing, says
// the same thing in --help and has the same default everywhere (the drop-ins mirror
// ec2-ami-tools' flags, spec/CLI.md).
//
// How to declare a new command's flags:
//   * take a shared flag with `flag('privatekey')`; adjust it for your command with an override,
//     `flag('privatekey', { required: true, help: '…' })` — anything but `long` and `kind` may be
//     overridden (`short: undefined` drops the one-letter name; `name` renames the parsed key
//     when one long name means something else, as keygen's `-k KEY_OUT`);
//   * several at once, unchanged: `...flags('kernel', 'ramdisk')`;
//   * a flag only your command takes may stay an inline OptionSpec in your command's table;
//     when a second command needs it, move it here and have both take it with flag();
//   * a default the parser can apply is a typed `defaultValue` (string / number / boolean /
//     string[] by `kind`): `opts.str('destination')` then returns it when the flag is absent,
//     and help shows it; `default` is help text only, for defaults that depend on other flags
//     or the machine ("the manifest's directory"), and overrides what help shows;
//   * `opts.has(name)` is true only when the flag was typed; reading a name your command did
//     not declare throws (see ParsedOptions), so declare every flag you read;
//   * the common flags (--help, --batch, --debug, --quiet, --json, …) are added to every
//     command by options.ts: do not list them.
import os from 'node:os';
import { DISK_FORMATS } from '../disk/image-sink.js';
import { BOOT_MODES, DEFAULT_ROOT_DEVICE } from '../ebs/boot-mode.js';
import { DEFAULT_EBS_RETRY } from '../ebs/connection.js';
import { CANNED_ACLS, DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_SECONDS } from '../s3/connection.js';
import { RETRY_ON } from '../s3/retry.js';
import type { OptionSpec } from './options.js';

/** What a command may change in a catalog flag. */
export type FlagOverride = Partial<Omit<OptionSpec, 'long' | 'kind'>>;

const catalog = {
  // --- keys and identity ---
  privatekey: {
    name: 'privatekey',
    long: 'privatekey',
    short: 'k',
    kind: 'string',
    metavar: 'PATH',
    path: 'file',
    help: 'Your RSA private key (PEM, PKCS#1 or PKCS#8); signs the manifest.',
  },
  cert: {
    name: 'cert',
    long: 'cert',
    short: 'c',
    kind: 'string',
    metavar: 'PATH',
    path: 'file',
    help: "Your X.509 certificate (PEM); the bundle's key is also wrapped to it.",
  },
  user: {
    name: 'user',
    long: 'user',
    short: 'u',
    kind: 'string',
    metavar: 'USER',
    help: 'Your AWS account number: 12 digits, hyphens allowed (not your access key id).',
  },
  ec2cert: {
    name: 'ec2cert',
    long: 'ec2cert',
    kind: 'string',
    metavar: 'PATH',
    path: 'file',
    default: '$EC2_AMITOOL_HOME/etc/ec2/amitools/cert-ec2.pem, else the copy shipped with amibundle',
    help: "EC2's certificate the key is wrapped to (use cert-ec2-gov.pem / cert-ec2-cn-north-1.pem for GovCloud / China).",
  },

  // --- files and directories ---
  manifest: {
    name: 'manifest',
    long: 'manifest',
    short: 'm',
    kind: 'string',
    metavar: 'PATH',
    path: 'file',
    help: "The bundle's manifest (NAME.manifest.xml).",
  },
  destination: {
    name: 'destination',
    long: 'destination',
    short: 'd',
    kind: 'string',
    metavar: 'PATH',
    path: 'dir',
    defaultValue: '/tmp',
    help: 'Directory the parts and manifest are written to.',
  },
  directory: {
    name: 'directory',
    long: 'directory',
    short: 'd',
    kind: 'string',
    metavar: 'DIRECTORY',
    path: 'dir',
    help: 'Directory holding the parts.',
  },
  source: {
    name: 'source',
    long: 'source',
    short: 's',
    kind: 'string',
    metavar: 'DIRECTORY',
    path: 'dir',
    help: 'Directory holding the parts.',
  },
  prefix: {
    name: 'prefix',
    long: 'prefix',
    short: 'p',
    kind: 'string',
    metavar: 'PREFIX',
    help: 'Bundle name: NAME.manifest.xml, NAME.part.N and the file name inside.',
  },
  image: {
    name: 'image',
    long: 'image',
    short: 'i',
    kind: 'string',
    metavar: 'PATH',
    path: 'file',
    help: 'The disk image to bundle.',
  },
  volume: {
    name: 'volume',
    long: 'volume',
    short: 'v',
    kind: 'string',
    metavar: 'PATH',
    path: 'dir',
    defaultValue: '/',
    help: 'The system (or any directory) to copy into the image.',
  },

  // --- what goes into the manifest ---
  arch: {
    name: 'arch',
    long: 'arch',
    short: 'r',
    kind: 'string',
    metavar: 'ARCHITECTURE',
    default: 'this machine (x86_64 or i386)',
    help: 'Image architecture: i386 or x86_64.',
  },
  kernel: {
    name: 'kernel',
    long: 'kernel',
    kind: 'string',
    metavar: 'ID',
    help: 'Kernel id (aki-…) for the manifest.',
  },
  ramdisk: {
    name: 'ramdisk',
    long: 'ramdisk',
    kind: 'string',
    metavar: 'ID',
    help: 'Ramdisk id (ari-…) for the manifest.',
  },
  productcodes: {
    name: 'productcodes',
    long: 'productcodes',
    kind: 'string',
    metavar: 'CODES',
    help: 'Product codes, comma-separated; stored as one element exactly as ec2-ami-tools does.',
  },
  blockDeviceMapping: {
    name: 'blockDeviceMapping',
    long: 'block-device-mapping',
    short: 'B',
    kind: 'list',
    accumulate: true,
    metavar: 'MAPS',
    help: 'Default block-device mapping: virtual=device,… (e.g. ami=sda1,root=/dev/sda1,ephemeral0=sdb). Repeats merge.',
  },
  inherit: {
    name: 'inherit',
    long: 'inherit',
    kind: 'flag',
    negatable: true,
    defaultValue: true,
    help: "Take kernel, ramdisk, product codes, block-device mapping and ancestry from this instance's metadata (IMDSv2). Off with --no-inherit (needed off EC2).",
  },

  // --- how the bundle is made ---
  noSizeChecks: {
    name: 'noSizeChecks',
    long: 'no-size-checks',
    kind: 'flag',
    noop: 'sizes are always checked: an empty image is refused, one over 10 GiB draws a warning.',
    help: 'Skip size checks.',
  },
  sparse: {
    name: 'sparse',
    long: 'sparse',
    kind: 'string',
    choices: ['fs', 'zeros', 'none'],
    defaultValue: 'fs',
    help: "How holes are found: fs = the filesystem's holes, exactly as GNU tar; zeros = also all-zero 512-byte blocks; none = plain member.",
  },
  compress: {
    name: 'compress',
    long: 'compress',
    kind: 'string',
    metavar: 'CODEC[:LEVEL]',
    defaultValue: 'gzip',
    help: 'gzip (what EC2 reads) or zstd[:LEVEL] (archives only: EC2 cannot register such a bundle).',
  },
  compressLevel: {
    name: 'compressLevel',
    long: 'compress-level',
    kind: 'int',
    metavar: 'N',
    default: '6 (gzip), 3 (zstd)',
    help: 'Compression level: gzip 1-9, zstd 1-19.',
  },
  fast: { name: 'fast', long: 'fast', kind: 'flag', help: 'Same as --compress-level 1.' },
  best: {
    name: 'best',
    long: 'best',
    kind: 'flag',
    help: 'Same as --compress-level 9 (what ec2-ami-tools uses).',
  },
  threads: {
    name: 'threads',
    long: 'threads',
    kind: 'int',
    metavar: 'N',
    defaultValue: os.availableParallelism(),
    default: 'the number of CPUs',
    help: 'Compression threads.',
  },

  // --- reading a bundle ---
  ec2Key: {
    name: 'ec2Key',
    long: 'ec2-key',
    kind: 'flag',
    help: "-k is EC2's key: unwrap the ec2_encrypted_key/iv copies (for archives made with your own --ec2cert).",
  },
  verifyCert: {
    name: 'verifyCert',
    long: 'cert',
    kind: 'string',
    metavar: 'PATH',
    path: 'file',
    help: 'Verify the manifest signature with this certificate instead of the public half of -k (needed with --ec2-key).',
  },
  noSignatureCheck: {
    name: 'noSignatureCheck',
    long: 'no-signature-check',
    kind: 'flag',
    help: 'Do not check the manifest signature (for the rare bundle signed by a key you do not have); the output says it was not checked.',
  },
  format: {
    name: 'format',
    long: 'format',
    kind: 'string',
    metavar: 'FORMAT',
    choices: DISK_FORMATS,
    defaultValue: 'raw',
    help: 'Disk format of the restored image: raw (NAME, sparse), qcow2 (NAME.qcow2), vmdk (NAME.vmdk, streamOptimized, as AWS VM Import takes), vhd (NAME.vhd, dynamic) or vhd-fixed (NAME.vhd, fixed). Written straight from the bundle, never through a raw copy.',
  },

  // --- paravirtual to HVM (unbundle --hvm, convert --hvm) ---
  hvm: {
    name: 'hvm',
    long: 'hvm',
    kind: 'flag',
    help: "Turn a partitionless file-system image (a paravirtual AMI) into a bootable whole disk: partition table, GRUB 2 for BIOS from this host, the image's newest kernel by root UUID with a serial console, PV-only fstab entries commented out. Nothing from the image is run. Root only.",
  },
  partition: {
    name: 'partition',
    long: 'partition',
    kind: 'string',
    metavar: 'TABLE',
    choices: ['mbr', 'gpt'],
    defaultValue: 'mbr',
    help: 'With --hvm: the partition table (gpt adds a BIOS boot partition for GRUB).',
  },
  kernelFrom: {
    name: 'kernelFrom',
    long: 'kernel-from',
    kind: 'string',
    metavar: 'DIRECTORY',
    path: 'dir',
    help: "With --hvm: copy vmlinuz-*/initrd.img-* from this directory into the image's /boot (for images that booted a kernel from an AKI).",
  },

  // --- S3: where, who, how ---
  bucket: {
    name: 'bucket',
    long: 'bucket',
    short: 'b',
    kind: 'string',
    metavar: 'BUCKET[/PREFIX]',
    help: 'Bucket, optionally followed by the key prefix of the bundle.',
  },
  accessKey: {
    name: 'accessKey',
    long: 'access-key',
    kind: 'string',
    metavar: 'KEY_ID',
    help: 'AWS access key id. Without -a/-s/-t, the AWS SDK default chain is used: environment, shared config and profiles, SSO, container, instance profile (IMDSv2).',
  },
  secretKey: {
    name: 'secretKey',
    long: 'secret-key',
    kind: 'string',
    metavar: 'SECRET',
    help: 'AWS secret access key.',
  },
  delegationToken: {
    name: 'delegationToken',
    long: 'delegation-token',
    kind: 'string',
    metavar: 'TOKEN',
    help: 'Session token of temporary credentials (sent with Signature Version 4).',
  },
  region: {
    name: 'region',
    long: 'region',
    kind: 'string',
    metavar: 'REGION',
    help: "The bucket's region (any region). Default: found from the bucket, else us-east-1.",
  },
  url: {
    name: 'url',
    long: 'url',
    kind: 'string',
    metavar: 'URL',
    help: 'S3 endpoint: any S3-compatible server, addressed path-style (AWS_ENDPOINT_URL_S3 works too). An AWS endpoint only selects its region.',
  },
  sigv: {
    name: 'sigv',
    long: 'sigv',
    kind: 'string',
    metavar: 'VERSION',
    choices: ['2', '4'],
    defaultValue: '4',
    help: 'Signature version; only 4 is supported (S3 no longer accepts version 2).',
  },
  retry: {
    name: 'retry',
    long: 'retry',
    kind: 'flag',
    help: `Retry failed requests (5xx, throttling, network errors, damaged downloads) up to ${RETRY_ON.attempts} attempts with exponential back-off and jitter. Without it the first failure stops the run; running again resumes.`,
  },
  concurrency: {
    name: 'concurrency',
    long: 'concurrency',
    kind: 'int',
    metavar: 'N',
    defaultValue: DEFAULT_CONCURRENCY,
    help: 'Requests in flight at once (1-64). Memory use is about N x 10 MiB.',
  },
  timeout: {
    name: 'timeout',
    long: 'timeout',
    kind: 'int',
    metavar: 'SECONDS',
    defaultValue: DEFAULT_TIMEOUT_SECONDS,
    help: 'A request whose connection is idle this long fails (and is retried with --retry).',
  },
  acl: {
    name: 'acl',
    long: 'acl',
    kind: 'string',
    metavar: 'ACL',
    choices: CANNED_ACLS,
    default: 'aws-exec-read, or $AMIBUNDLE_S3_ACL',
    help: 'Canned ACL of every object. EC2 reads bundles through aws-exec-read; private sends no ACL. AMIBUNDLE_S3_ACL sets the default where the command line is fixed (Packer) and the server lacks aws-exec-read.',
  },
  location: {
    name: 'location',
    long: 'location',
    kind: 'string',
    metavar: 'LOCATION',
    help: 'Region to create the bucket in (EU and US are accepted for eu-west-1 and us-east-1). Default: --region.',
  },

  // --- EBS (to-ebs, from-ebs, register, doctor --for to-ebs) ---
  endpointUrl: {
    name: 'endpointUrl',
    long: 'endpoint-url',
    kind: 'string',
    metavar: 'URL',
    help: 'Send EBS direct and EC2 requests to this endpoint instead of AWS (AWS_ENDPOINT_URL_EBS and AWS_ENDPOINT_URL_EC2 work too).',
  },
  ec2Url: {
    name: 'ec2Url',
    long: 'ec2-url',
    kind: 'string',
    metavar: 'URL',
    help: 'EC2 endpoint, when it differs from --endpoint-url.',
  },
  attempts: {
    name: 'attempts',
    long: 'attempts',
    kind: 'int',
    metavar: 'N',
    defaultValue: DEFAULT_EBS_RETRY.attempts,
    help: `Attempts per request (1-20) on 5xx, throttling, dropped or stalled connections, with exponential back-off (${DEFAULT_EBS_RETRY.baseDelayMs} ms doubling to ${DEFAULT_EBS_RETRY.maxDelayMs / 1000} s, full jitter). Access denied and validation errors are never retried.`,
  },
  bootMode: {
    name: 'bootMode',
    long: 'boot-mode',
    kind: 'string',
    metavar: 'MODE',
    choices: BOOT_MODES,
    help: 'Firmware of the AMI: legacy-bios or uefi.',
  },
  ena: {
    name: 'ena',
    long: 'ena',
    kind: 'flag',
    negatable: true,
    defaultValue: true,
    help: 'Mark the AMI ENA-capable (needed by current instance types); --no-ena for old kernels.',
  },
  sriov: {
    name: 'sriov',
    long: 'sriov',
    kind: 'flag',
    help: 'Mark the AMI for Intel 82599 VF (SriovNetSupport simple).',
  },
  imdsV2: {
    name: 'imdsV2',
    long: 'imds-v2',
    kind: 'flag',
    negatable: true,
    defaultValue: true,
    help: 'Instances launched from the AMI require IMDSv2 (ImdsSupport v2.0); --no-imds-v2 allows IMDSv1.',
  },
  deprecateAt: {
    name: 'deprecateAt',
    long: 'deprecate-at',
    kind: 'string',
    metavar: 'TIME',
    help: 'Deprecate the AMI at this ISO 8601 time (a separate EnableImageDeprecation call).',
  },
  rootDevice: {
    name: 'rootDevice',
    long: 'root-device',
    kind: 'string',
    metavar: 'DEVICE',
    defaultValue: DEFAULT_ROOT_DEVICE,
    help: 'Root device name of the AMI.',
  },
  imageDescription: {
    name: 'imageDescription',
    long: 'image-description',
    kind: 'string',
    metavar: 'TEXT',
    help: 'Description of the AMI.',
  },
} as const satisfies Record<string, OptionSpec>;

export type FlagName = keyof typeof catalog;

/** Every catalog flag, by name (read-only: take one with flag()). */
export const flagCatalog: Readonly<Record<FlagName, OptionSpec>> = catalog;

/** A catalog flag, with this command's changes. */
export function flag(name: FlagName, override: FlagOverride = {}): OptionSpec {
  const base: OptionSpec = catalog[name];
  if (base.name !== name) throw new Error(`flag catalog entry '${name}' is named '${base.name}'`);
  return { ...base, ...override };
}

/** Several catalog flags, unchanged, in this order. */
export function flags(...names: readonly FlagName[]): OptionSpec[] {
  return names.map((n) => flag(n));
}
