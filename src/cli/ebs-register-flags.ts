// The registration flags to-ebs --register and register share: boot mode, ENA, SR-IOV, IMDS,
// architecture, deprecation, root device, and the parsed plan they make.
import { BOOT_MODES, type BootMode } from '../ebs/boot-mode.js';
import { DEFAULT_ROOT_DEVICE } from '../ebs/register.js';
import { UsageError } from '../errors.js';
import type { OptionSpec, ParsedOptions } from './options.js';

export const registerOptions: readonly OptionSpec[] = [
  {
    name: 'bootMode',
    long: 'boot-mode',
    kind: 'string',
    metavar: 'MODE',
    choices: BOOT_MODES,
    help: 'Firmware of the AMI: legacy-bios or uefi. to-ebs default: from the image (BIOS when GRUB i386-pc boot code is in the MBR, UEFI when a GPT holds an EFI system partition).',
  },
  {
    name: 'ena',
    long: 'ena',
    kind: 'flag',
    negatable: true,
    default: 'on',
    help: 'Mark the AMI ENA-capable (needed by current instance types); --no-ena for old kernels.',
  },
  {
    name: 'sriov',
    long: 'sriov',
    kind: 'flag',
    help: 'Mark the AMI for Intel 82599 VF (SriovNetSupport simple).',
  },
  {
    name: 'imdsV2',
    long: 'imds-v2',
    kind: 'flag',
    negatable: true,
    default: 'on',
    help: 'Instances launched from the AMI require IMDSv2 (ImdsSupport v2.0); --no-imds-v2 allows IMDSv1.',
  },
  {
    name: 'arch',
    long: 'arch',
    short: 'r',
    kind: 'string',
    metavar: 'ARCH',
    choices: ['i386', 'x86_64', 'arm64'],
    help: "Architecture of the AMI. Default: the manifest's, else x86_64.",
  },
  {
    name: 'deprecateAt',
    long: 'deprecate-at',
    kind: 'string',
    metavar: 'TIME',
    help: 'Deprecate the AMI at this ISO 8601 time (a separate EnableImageDeprecation call).',
  },
  {
    name: 'rootDevice',
    long: 'root-device',
    kind: 'string',
    metavar: 'DEVICE',
    default: DEFAULT_ROOT_DEVICE,
    help: 'Root device name of the AMI.',
  },
  {
    name: 'imageDescription',
    long: 'image-description',
    kind: 'string',
    metavar: 'TEXT',
    help: 'Description of the AMI.',
  },
];

export interface RegisterFlags {
  readonly bootMode?: BootMode;
  readonly ena: boolean;
  readonly sriov: boolean;
  readonly imdsV2: boolean;
  readonly architecture?: string;
  readonly deprecateAt?: Date;
  readonly rootDevice?: string;
  readonly description?: string;
}

export function registerFlagsFromOptions(opts: ParsedOptions): RegisterFlags {
  const deprecate = opts.str('deprecateAt');
  let deprecateAt: Date | undefined;
  if (deprecate !== undefined) {
    deprecateAt = new Date(deprecate);
    if (Number.isNaN(deprecateAt.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(deprecate))
      throw new UsageError(
        `--deprecate-at has invalid value '${deprecate}': give an ISO 8601 time, e.g. 2027-06-30T00:00:00Z`,
      );
  }
  const bootMode = opts.str('bootMode') as BootMode | undefined;
  const arch = opts.str('arch');
  const rootDevice = opts.str('rootDevice');
  const description = opts.str('imageDescription');
  return {
    ...(bootMode !== undefined ? { bootMode } : {}),
    ena: opts.flagIfGiven('ena') ?? true,
    sriov: opts.flag('sriov'),
    imdsV2: opts.flagIfGiven('imdsV2') ?? true,
    ...(arch !== undefined ? { architecture: arch } : {}),
    ...(deprecateAt !== undefined ? { deprecateAt } : {}),
    ...(rootDevice !== undefined ? { rootDevice } : {}),
    ...(description !== undefined ? { description } : {}),
  };
}
