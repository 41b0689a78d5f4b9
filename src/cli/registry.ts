// Every command amibundle has, with the drop-in ec2-ami-tools executable that maps to it.
// Modules are loaded lazily so that `amibundle --help` does not load the AWS SDK.
import type { Command } from './command.js';

export interface CommandEntry {
  readonly name: string;
  /** ec2-ami-tools executable name, if the command is a drop-in replacement. */
  readonly tool?: string;
  readonly summary: string;
  readonly load: () => Promise<Command>;
}

export const commands: readonly CommandEntry[] = [
  {
    name: 'bundle-image',
    tool: 'ec2-bundle-image',
    summary: 'Bundle a disk image into encrypted parts and a signed manifest.',
    load: async () => (await import('./bundle-image.js')).bundleImageCommand,
  },
  {
    name: 'bundle-vol',
    tool: 'ec2-bundle-vol',
    summary: 'Copy a live system (or a directory) into a bootable image and bundle it.',
    load: async () => (await import('./bundle-vol.js')).bundleVolCommand,
  },
  {
    name: 'unbundle',
    tool: 'ec2-unbundle',
    summary: 'Restore the image from a bundle, checking every digest; holes are kept.',
    load: async () => (await import('./unbundle.js')).unbundleCommand,
  },
  {
    name: 'from-ebs',
    summary: 'Read an EBS snapshot back (EBS direct) as a disk image (raw, qcow2, VMDK, VHD) or a bundle.',
    load: async () => (await import('./from-ebs.js')).fromEbsCommand,
  },
  {
    name: 'upload-bundle',
    tool: 'ec2-upload-bundle',
    summary: 'Upload a bundle to S3: parallel, resumable, Content-MD5 checked, manifest last.',
    load: async () => (await import('./upload-bundle.js')).uploadBundleCommand,
  },
  {
    name: 'download-bundle',
    tool: 'ec2-download-bundle',
    summary: 'Download a bundle from S3: parallel, every part SHA-1 checked, resumable.',
    load: async () => (await import('./download-bundle.js')).downloadBundleCommand,
  },
  {
    name: 'delete-bundle',
    tool: 'ec2-delete-bundle',
    summary: "Delete a bundle's objects from S3 (by manifest or name prefix).",
    load: async () => (await import('./delete-bundle.js')).deleteBundleCommand,
  },
  {
    name: 'convert',
    summary: 'Convert a disk image between raw, qcow2, VMDK and VHD (told by its headers), holes kept.',
    load: async () => (await import('./convert.js')).convertCommand,
  },
  {
    name: 'verify',
    summary: 'Check a bundle end to end (parts, decryption, digest, signature) without writing.',
    load: async () => (await import('./verify.js')).verifyCommand,
  },
  {
    name: 'migrate-manifest',
    tool: 'ec2-migrate-manifest',
    summary: "Re-wrap a bundle's key for another partition's EC2 certificate, set kernel/ramdisk, re-sign.",
    load: async () => (await import('./migrate-manifest.js')).migrateManifestCommand,
  },
  {
    name: 'to-ebs',
    summary:
      'Upload a bundle or raw image as an EBS snapshot (EBS direct APIs), optionally registering an AMI.',
    load: async () => (await import('./to-ebs.js')).toEbsCommand,
  },
  {
    name: 'register',
    summary: 'Register an HVM AMI from a completed EBS snapshot (boot mode, ENA, IMDSv2, deprecation).',
    load: async () => (await import('./register.js')).registerCommand,
  },
  {
    name: 'keygen',
    summary: 'Create an RSA key and a self-signed certificate for signing bundles (-k/-c).',
    load: async () => (await import('./keygen.js')).keygenCommand,
  },
  {
    name: 'doctor',
    summary: 'Preflight: credentials, bucket, ACLs, free space, image size and HVM boot, keys, host tools.',
    load: async () => (await import('./doctor.js')).doctorCommand,
  },
  {
    name: 'bench',
    summary: 'Measure throughput: each stage alone, then bundle-image and unbundle end to end.',
    load: async () => (await import('./bench.js')).benchCommand,
  },
  {
    name: 'install-links',
    summary: 'Make the ec2-* drop-in names as links in a directory (for the single executable).',
    load: async () => (await import('./install-links.js')).installLinksCommand,
  },
  {
    name: 'ec2-ami-tools-version',
    tool: 'ec2-ami-tools-version',
    summary: "Print the compatible ec2-ami-tools and manifest versions, and amibundle's.",
    load: async () => (await import('./tools-version.js')).toolsVersionCommand,
  },
];

export function findCommand(name: string): CommandEntry | undefined {
  return commands.find((c) => c.name === name || c.tool === name);
}
