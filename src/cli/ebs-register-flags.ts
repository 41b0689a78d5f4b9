// The registration flags to-ebs --register and register share: boot mode, ENA, SR-IOV, IMDS,
// architecture, deprecation, root device, and the parsed plan they make.
import type { BootMode } from '../ebs/boot-mode.js';
import { UsageError } from '../errors.js';
import { flag, flags } from './flag-catalog.js';
import type { OptionSpec, ParsedOptions } from './options.js';

export const registerOptions: readonly OptionSpec[] = [
  flag('bootMode', {
    help: 'Firmware of the AMI: legacy-bios or uefi. to-ebs default: from the image (BIOS when GRUB i386-pc boot code is in the MBR, UEFI when a GPT holds an EFI system partition).',
  }),
  ...flags('ena', 'sriov', 'imdsV2'),
  flag('arch', {
    metavar: 'ARCH',
    choices: ['i386', 'x86_64', 'arm64'],
    default: "the manifest's, else x86_64",
    help: 'Architecture of the AMI.',
  }),
  ...flags('deprecateAt', 'rootDevice', 'imageDescription'),
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
    ena: opts.flag('ena'),
    sriov: opts.flag('sriov'),
    imdsV2: opts.flag('imdsV2'),
    ...(arch !== undefined ? { architecture: arch } : {}),
    ...(deprecateAt !== undefined ? { deprecateAt } : {}),
    ...(rootDevice !== undefined ? { rootDevice } : {}),
    ...(description !== undefined ? { description } : {}),
  };
}
