// `amibundle bundle-vol` / `ec2-bundle-vol`: flags -> bundleVolume() (the image, then unless
// --clone-only the bundle, with instance metadata inherited).
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { toolVersion } from '../version.js';
import { EC2_ROOT_LIMIT_MIB } from '../ec2-limits.js';
import type { ImageFsType } from '../volume/make-fs.js';
import { bundleVolume } from '../volume/bundle-volume.js';
import type { FstabChoice } from '../volume/volume-image.js';
import type { PartitionScheme } from '../volume/disk-image.js';
import {
  bundleNameFromFlags,
  bundleOptionsFromFlags,
  bundlingOptions,
  credentialOptions,
  detectArchitecture,
  reportMappingGaps,
} from './bundle-flags.js';
import type { Command } from './command.js';
import { flag } from './flag-catalog.js';
import type { OptionSpec } from './options.js';

const volumeOptions: readonly OptionSpec[] = [
  flag('prefix', {
    default: 'image',
    help: 'Name of the image file (DEST/PREFIX) and of the bundle.',
  }),
  flag('volume'),
  {
    name: 'size',
    long: 'size',
    short: 's',
    kind: 'int',
    metavar: 'MB',
    default: `the data to copy plus headroom, at most ${EC2_ROOT_LIMIT_MIB}`,
    help: 'Image size in MiB (the whole disk for -P mbr/gpt).',
  },
  {
    name: 'partition',
    long: 'partition',
    short: 'P',
    kind: 'string',
    metavar: 'TYPE',
    choices: ['mbr', 'gpt', 'none', 'auto'],
    defaultValue: 'auto',
    default:
      "auto: the source disk's partition table; for a directory, gpt if it has a kernel and GRUB 2, else none",
    help: 'none = a bare file system (paravirtual); mbr or gpt = a whole disk with GRUB 2 for BIOS (HVM).',
  },
  {
    name: 'fsType',
    long: 'fs-type',
    kind: 'string',
    metavar: 'TYPE',
    choices: ['ext2', 'ext3', 'ext4', 'xfs'],
    default: "the volume's (ext2/3/4, xfs), else ext4",
    help: "The image's file system (its label and UUID are the volume's).",
  },
  {
    name: 'exclude',
    long: 'exclude',
    short: 'e',
    kind: 'list',
    accumulate: true,
    metavar: 'DIR1,DIR2,...',
    help: 'Paths inside the volume to leave out (absolute, relative to the volume; rsync patterns allowed). Repeats add up; extra arguments after -e (a shell-expanded /tmp/*) are excluded too.',
  },
  {
    name: 'include',
    long: 'include',
    short: 'i',
    kind: 'list',
    accumulate: true,
    metavar: 'FILE1,FILE2,...',
    help: 'Paths to copy even though the security filter would leave them out.',
  },
  {
    name: 'filter',
    long: 'filter',
    kind: 'flag',
    negatable: true,
    defaultValue: true,
    help: 'The security filter: leaves out *.pem, *.priv, SSH keys (*id_rsa*, …), .ssh/authorized_keys, .bash_history, *.gpg, *.jks and editor files. --no-filter copies them. The -k/-c files are never copied.',
  },
  {
    name: 'all',
    long: 'all',
    short: 'a',
    kind: 'flag',
    help: 'Also copy file systems mounted below the volume that are not local (network, tmpfs, overlay, …).',
  },
  {
    name: 'cloneOnly',
    long: 'clone-only',
    kind: 'flag',
    help: 'Make the image file only; do not bundle it.',
  },
  flag('inherit'),
  {
    name: 'fstab',
    long: 'fstab',
    kind: 'string',
    metavar: 'PATH',
    path: 'file',
    help: "Use this file as the image's /etc/fstab (as is).",
  },
  {
    name: 'generateFstab',
    long: 'generate-fstab',
    kind: 'flag',
    help: 'Write a standard EC2 /etc/fstab (root by UUID, ephemeral disk on /mnt with nofail).',
  },
  {
    name: 'grubConfig',
    long: 'grub-config',
    kind: 'string',
    metavar: 'PATH',
    path: 'file',
    help: 'Use this file as the GRUB 2 configuration (boot/grub/grub.cfg) of a -P mbr/gpt image.',
  },
  {
    name: 'serialConsole',
    long: 'serial-console',
    kind: 'flag',
    negatable: true,
    defaultValue: true,
    help: "Add console=ttyS0 (EC2's system log) to the kernel command line of a -P mbr/gpt image when it has no serial console.",
  },
  {
    name: 'script',
    long: 'script',
    short: 'S',
    kind: 'string',
    metavar: 'SCRIPT',
    path: 'exec',
    help: "Run SCRIPT with the image's mount point as its argument before the image is closed.",
  },
];

/** The bundling flags, optional here: --clone-only needs none of them. */
const credentials: readonly OptionSpec[] = credentialOptions.map((o) => ({
  ...o,
  required: false,
  help: `${o.help} Required unless --clone-only.`,
}));

const bundling: readonly OptionSpec[] = bundlingOptions.map((o) =>
  o.name === 'destination' ? { ...o, help: 'Directory for the image file, the parts and the manifest.' } : o,
);

function fstabChoice(fstab: string | undefined, generate: boolean, arch: string): FstabChoice {
  if (fstab !== undefined && generate)
    throw new UsageError('--fstab and --generate-fstab may not both be provided');
  if (fstab !== undefined) return { mode: 'file', text: fs.readFileSync(fstab, 'utf8') };
  if (generate) return { mode: 'generate', legacy: arch === 'i386' };
  return { mode: 'keep' };
}

export const bundleVolCommand: Command = {
  spec: {
    name: 'bundle-vol',
    tool: 'ec2-bundle-vol',
    summary: 'Copy a live system (or a directory) into an image, bootable with GRUB 2, and bundle it.',
    options: [...credentials, ...bundling, ...volumeOptions],
    positionals: {
      metavar: '[PATH...]',
      help: 'only after -e: more paths to exclude (what a shell makes of Packer\'s "-e /tmp/*")',
    },
    examples: [
      'sudo ec2-bundle-vol -k pk.pem -c cert.pem -u 123456789012 -r x86_64 -e /tmp/* -d /mnt -p my-ami --batch --no-filter',
      'sudo amibundle bundle-vol --clone-only --no-inherit -v /srv/rootfs -P gpt -d /var/tmp -p rootfs.img',
    ],
    manual: `Makes an image of a running Linux system (or of any directory) and bundles it for an instance-store
(S3-backed) AMI, as ec2-bundle-vol does:
  * the image DEST/PREFIX is a sparse file sized for the data (-s to choose), with the volume's file
    system type, label and UUID (ext2/3/4, xfs);
  * -P none makes a bare file system (paravirtual); -P mbr or gpt a whole disk with the file system
    in partition 1 and GRUB 2 for BIOS installed from the copied system's own GRUB, booting its newest
    kernel with the root found by UUID and a serial console (console=ttyS0) unless --no-serial-console;
  * files are copied with rsync through a loop mount in a private temporary directory: hard links,
    ACLs, every xattr (SELinux labels, file capabilities), sparse files, devices, owners, times and
    top-level dot-files are kept; anything that cannot be kept is listed at the end;
  * /dev, /proc, /sys, /run, /mnt, /media, /tmp and /var/tmp are copied empty; non-local mounts,
    swap files, lost+found, the destination and the image are left out; so are the -k and -c files,
    always; the security filter leaves out keys and histories unless --no-filter;
  * /etc/fstab is kept, with the root entry naming the file system by UUID and entries for disks the
    image does not have commented out (--fstab FILE or --generate-fstab to replace it);
  * unless --clone-only, the image is bundled like bundle-image, with kernel, ramdisk, product codes,
    block-device mapping and ancestry taken from the instance metadata service (IMDSv2; exit 12 when
    it cannot be reached: use --no-inherit off EC2).
Nothing is left behind on failure or Ctrl-C: mounts, loop devices, temporary directories and the
partial image are removed. Must run as root.`,
  },

  async run(opts, ctx) {
    const volume = opts.str('volume')!;
    const prefix = bundleNameFromFlags(opts) ?? 'image';
    const arch = opts.str('arch') ?? detectArchitecture();
    const fstab = fstabChoice(opts.str('fstab'), opts.flag('generateFstab'), arch);

    const excludes = [...opts.list('exclude')];
    if (opts.positionals.length > 0) {
      if (!opts.has('exclude'))
        throw new UsageError(
          `unexpected argument '${opts.positionals[0]}': bundle-vol takes extra arguments only after -e`,
          'quote values that contain spaces, and put an option name before every value',
        );
      const bad = opts.positionals.find((p) => !p.startsWith('/'));
      if (bad !== undefined)
        throw new UsageError(
          `unexpected argument '${bad}': extra -e paths must be absolute`,
          'put an option name before every value',
        );
      excludes.push(...opts.positionals);
    }
    const size = opts.int('size');
    if (size !== undefined && size <= 0)
      throw new UsageError(`--size has invalid value '${size}': give a size in MiB`);

    const cloneOnly = opts.flag('cloneOnly');
    const inherit = opts.flag('inherit');
    if (!cloneOnly)
      for (const name of ['cert', 'privatekey', 'user'])
        if (!opts.has(name))
          throw new UsageError(`missing mandatory parameter: --${name}`, 'or use --clone-only');

    // Keys and certificates are checked before the long copy, not after.
    const base = cloneOnly ? undefined : await bundleOptionsFromFlags(opts, ctx);
    const secretFiles = ['privatekey', 'cert']
      .map((n) => opts.str(n))
      .filter((f): f is string => f !== undefined);
    const grubConfigFile = opts.str('grubConfig');
    const result = await bundleVolume({
      volume,
      destination: opts.str('destination')!,
      prefix,
      ...(size !== undefined ? { sizeMiB: size } : {}),
      partition: opts.str('partition') as PartitionScheme | 'auto',
      ...(opts.str('fsType') ? { fsType: opts.str('fsType') as ImageFsType } : {}),
      all: opts.flag('all'),
      filter: opts.flag('filter'),
      excludes,
      includes: opts.list('include'),
      secretFiles,
      fstab,
      ...(opts.str('script') ? { script: path.resolve(opts.str('script')!) } : {}),
      ...(grubConfigFile ? { grubConfig: fs.readFileSync(grubConfigFile, 'utf8') } : {}),
      serialConsole: opts.flag('serialConsole'),
      toolVersion,
      ...(base ? { bundle: base } : {}),
      inherit,
      signal: ctx.signal,
      out: ctx.out,
      confirm: (q) => ctx.confirm(q),
    });
    const bundled = result.bundle;
    if (!bundled) {
      ctx.out.info('Not bundling image file since "--clone-only" flag was specified.');
      ctx.out.info(`${ctx.invokedAs} complete.`);
      return;
    }
    for (const p of bundled.parts) ctx.out.info(`Created ${p.filename}`);
    reportMappingGaps(bundled.blockDeviceMapping, ctx);
    ctx.out.info(`Bundle manifest is ${bundled.manifestLocation}`);
    ctx.out.event({
      type: 'done',
      command: 'bundle-vol',
      image: result.image.imagePath,
      manifest: bundled.manifestLocation,
      name: bundled.name,
      parts: bundled.parts.length,
      size: bundled.size,
      bundledSize: bundled.bundledSize,
      digest: bundled.digest,
      seconds: result.seconds,
    });
    ctx.out.info(`${ctx.invokedAs} complete.`);
  },
};
