// Flags for getting an image off instance store: unbundle straight onto a block device
// (`--device`, `--assume-zeroed`, `--check`), with the checks and the confirmation that writing
// over a whole disk deserves; and turning a paravirtual image into a bootable disk (`--hvm`).
import { checkDevice } from '../disk/device-check.js';
import { DeviceSink } from '../disk/device-sink.js';
import type { ImageSink } from '../disk/image-sink.js';
import { UsageError } from '../errors.js';
import { checkHvmHost, type HvmPartition } from '../hvm/hvm-disk.js';
import type { TarMember } from '../format/tar-reader.js';
import type { RunContext } from './command.js';
import { flag } from './flag-catalog.js';
import type { OptionSpec, ParsedOptions } from './options.js';

export const deviceOptions: readonly OptionSpec[] = [
  {
    name: 'device',
    long: 'device',
    kind: 'string',
    metavar: 'DEVICE',
    help: 'Write the image onto this block device (e.g. a new EBS volume, /dev/xvdf) instead of a file: refused when it or a partition of it is mounted, or when it is smaller than the image; asks first unless --batch.',
  },
  {
    name: 'assumeZeroed',
    long: 'assume-zeroed',
    kind: 'flag',
    help: "With --device: the device already reads zeros (a new EBS volume does), so the image's holes and zero blocks are not written.",
  },
  {
    name: 'check',
    long: 'check',
    kind: 'flag',
    help: 'With --device: after the final fsync, read the device back and compare its SHA-1 with that of the image as written.',
  },
];

/**
 * `--device`: checks the device against the image size, asks (stdin must be a terminal, else
 * --batch is required: nothing waits for an answer that cannot come), and returns the sink maker
 * for restoreBundle(); undefined without --device.
 */
export async function deviceSinkFromOptions(
  opts: ParsedOptions,
  ctx: RunContext,
  imageSize: number,
): Promise<((member: TarMember) => ImageSink) | undefined> {
  const device = opts.str('device');
  if (device === undefined) {
    for (const f of ['assumeZeroed', 'check'] as const)
      if (opts.flag(f)) throw new UsageError(`--${f === 'check' ? 'check' : 'assume-zeroed'} needs --device`);
    return undefined;
  }
  if (opts.has('destination')) throw new UsageError('--device and --destination may not both be provided');
  if (opts.has('format') && opts.str('format') !== 'raw')
    throw new UsageError('--device writes the image as it is: --format may not be given with it');
  checkDevice(device, imageSize);
  if (!opts.flag('batch')) {
    if (!process.stdin.isTTY)
      throw new UsageError(
        `--device ${device}: refusing to overwrite it without a confirmation, and stdin is not a terminal`,
        'pass --batch to write without asking',
      );
    if (!(await ctx.confirm(`Everything on ${device} will be overwritten by the image.`)))
      throw new UsageError(
        `stopped: overwriting ${device} was not confirmed`,
        'pass --batch to write without asking',
      );
  }
  const assumeZeroed = opts.flag('assumeZeroed');
  const check = opts.flag('check');
  return (member) => new DeviceSink({ device, size: member.size, assumeZeroed, check, out: ctx.out });
}

/** `--hvm` and what goes with it (unbundle and convert), from the flag catalog. */
export const hvmOptions: readonly OptionSpec[] = [flag('hvm'), flag('partition'), flag('kernelFrom')];

export interface HvmChoice {
  readonly partition: HvmPartition;
  readonly kernelFrom?: string;
}

/** `--hvm` with its partition table and kernel directory, checked (host tools, root); undefined without --hvm. */
export function hvmFromOptions(opts: ParsedOptions): HvmChoice | undefined {
  if (!opts.flag('hvm')) {
    for (const [name, spelled] of [
      ['partition', '--partition'],
      ['kernelFrom', '--kernel-from'],
    ] as const)
      if (opts.has(name)) throw new UsageError(`${spelled} needs --hvm`);
    return undefined;
  }
  const kernelFrom = opts.str('kernelFrom');
  checkHvmHost(kernelFrom);
  return {
    partition: opts.str('partition') as HvmPartition,
    ...(kernelFrom ? { kernelFrom } : {}),
  };
}
