// Flags shared by bundle-image and bundle-vol (ec2-ami-tools' bundling parameters plus
// amibundle's compression and sparse options), and their translation into BundleImageOptions.
import fs from 'node:fs';
import os from 'node:os';
import type { BundleImageOptions, CompressionOptions, SparseMode } from '../bundle/bundle-options.js';
import { checkBundleName } from '../bundle/bundle-image.js';
import { findEc2Cert } from '../crypto/ec2-cert.js';
import { BundleError, UsageError } from '../errors.js';
import type { DeviceMapping } from '../format/manifest.js';
import type { RunContext } from './command.js';
import { flag, flags } from './flag-catalog.js';
import type { OptionSpec, ParsedOptions } from './options.js';

/** Certificate, key and account: mandatory for every bundling command. */
export const credentialOptions: readonly OptionSpec[] = [
  flag('cert', { required: true }),
  flag('privatekey', { required: true }),
  flag('user', { required: true }),
];

/** Manifest facts, destination and how to compress: optional for every bundling command. */
export const bundlingOptions: readonly OptionSpec[] = flags(
  'destination',
  'ec2cert',
  'arch',
  'kernel',
  'ramdisk',
  'productcodes',
  'blockDeviceMapping',
  'noSizeChecks',
  'sparse',
  'compress',
  'compressLevel',
  'fast',
  'best',
  'threads',
);

export function detectArchitecture(): string {
  switch (os.arch()) {
    case 'x64':
      return 'x86_64';
    case 'ia32':
      return 'i386';
    default:
      return os.arch();
  }
}

/** `-u`: hyphens removed, then exactly 12 digits (the reference only looked for 12 in a row). */
export function parseAccountNumber(value: string): string {
  const user = value.replace(/-/g, '');
  if (!/^\d{12}$/.test(user))
    throw new UsageError(
      `--user has invalid value '${value}': the user ID should consist of 12 digits (optionally hyphenated); this should not be your Access Key ID`,
    );
  return user;
}

/** `-B` entries `virtual=device`; repeats merge and later keys win, as in the reference. */
export function parseBlockDeviceMapping(entries: readonly string[]): DeviceMapping[] {
  const map = new Map<string, string>();
  for (const entry of entries) {
    const m = /^\s*(\S+?)\s*=\s*(\S+?)\s*$/.exec(entry);
    if (!m || m[2]!.includes('='))
      throw new UsageError(`--block-device-mapping has invalid value '${entry}': expected virtual=device`);
    map.set(m[1]!, m[2]!);
  }
  return [...map].map(([virtual, device]) => ({ virtual, device }));
}

export function parseCompression(opts: ParsedOptions): CompressionOptions {
  const spec = opts.str('compress')!;
  const m = /^(gzip|zstd)(?::(\d+))?$/i.exec(spec);
  if (!m) throw new UsageError(`--compress has invalid value '${spec}': use gzip or zstd[:LEVEL]`);
  const codec = m[1]!.toLowerCase() as 'gzip' | 'zstd';
  const levels = [
    opts.flag('fast') ? 1 : undefined,
    opts.flag('best') ? 9 : undefined,
    opts.int('compressLevel'),
  ];
  if (m[2] !== undefined) levels.push(Number(m[2]));
  const given = levels.filter((l): l is number => l !== undefined);
  if (new Set(given).size > 1)
    throw new UsageError(
      'conflicting compression levels: give only one of --fast, --best, --compress-level, CODEC:LEVEL',
    );
  const level = given[0] ?? (codec === 'gzip' ? 6 : 3);
  const [min, max] = codec === 'gzip' ? [1, 9] : [1, 19];
  if (level < min || level > max)
    throw new UsageError(`compression level ${level} is out of range for ${codec} (${min}-${max})`);
  const threads = opts.int('threads')!;
  if (threads < 1 || threads > 256)
    throw new UsageError(`--threads must be between 1 and 256 (got ${threads})`);
  return { codec, level, threads };
}

/** -p/--prefix as a bundle name: a value that cannot be one is a bad command line (exit 1). */
export function bundleNameFromFlags(opts: ParsedOptions): string | undefined {
  const name = opts.str('prefix');
  if (name === undefined) return undefined;
  try {
    return checkBundleName(name);
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    throw new UsageError(`--prefix has invalid value '${name}': ${err.message}`, err.hint);
  }
}

function readPem(file: string): string {
  return fs.readFileSync(file, 'utf8');
}

/** Everything bundleImage() needs from the flags, except the image itself. */
export async function bundleOptionsFromFlags(
  opts: ParsedOptions,
  ctx: RunContext,
): Promise<Omit<BundleImageOptions, 'imagePath'>> {
  const user = parseAccountNumber(opts.str('user')!);
  const architecture = opts.str('arch') ?? detectArchitecture();
  if (architecture !== 'i386' && architecture !== 'x86_64') {
    if (
      !(await ctx.confirm(
        `Unsupported architecture [${architecture}]: EC2 instance-store images are i386 or x86_64.`,
      ))
    )
      throw new UsageError('stopped: unsupported architecture not confirmed (pass --batch or -r x86_64)');
  }
  const keyFile = opts.str('privatekey')!;
  const compression = parseCompression(opts);
  if (compression.codec === 'zstd')
    ctx.out.warn(
      'this bundle uses zstd: EC2 cannot register it; amibundle unbundle and verify read it (archives, restores)',
    );
  const blockDeviceMapping = parseBlockDeviceMapping(opts.list('blockDeviceMapping'));
  const productCodes = opts.str('productcodes');
  const destination = opts.str('destination')!;
  const ec2CertFile = findEc2Cert(opts.str('ec2cert'));
  return {
    destination,
    privateKeyPem: readPem(keyFile),
    userCertPem: readPem(opts.str('cert')!),
    ec2CertPem: readPem(ec2CertFile),
    pemFiles: { privateKey: keyFile, userCert: opts.str('cert')!, ec2Cert: ec2CertFile },
    user,
    architecture,
    kernelId: opts.str('kernel') || undefined,
    ramdiskId: opts.str('ramdisk') || undefined,
    ...(productCodes ? { productCodes: [productCodes] } : {}),
    ...(blockDeviceMapping.length ? { blockDeviceMapping } : {}),
    sparse: opts.str('sparse') as SparseMode,
    compression,
    signal: ctx.signal,
    out: ctx.out,
  };
}

/** The reference's notes about a mapping without `root` or `ami` entries. */
export function reportMappingGaps(mapping: readonly DeviceMapping[] | undefined, ctx: RunContext): void {
  if (!mapping?.length) return;
  for (const entry of ['root', 'ami'])
    if (!mapping.some((m) => m.virtual === entry))
      ctx.out.info(`Block-device-mapping has no '${entry}' entry. A launch-time default will be used.`);
}
