// Which firmware an image boots with, from its first blocks: BIOS when GRUB's i386-pc boot code is
// in the MBR (doctor's boot-sector check), UEFI when a GPT holds an EFI system partition. Neither
// means doctor finds it unbootable under HVM, and registering it would make an AMI whose
// instances never come up: to-ebs --register refuses it before anything is uploaded.
import { inspectBootHead, type BootLayout } from '../format/boot-sector.js';

export type BootMode = 'legacy-bios' | 'uefi';
export const BOOT_MODES: readonly BootMode[] = ['legacy-bios', 'uefi'];

/** The device name an HVM AMI's root is registered under (here, free of the EC2 SDK, for the flag catalog). */
export const DEFAULT_ROOT_DEVICE = '/dev/xvda';

/** EFI system partition type GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B as stored on disk. */
const ESP_GUID = Buffer.from('28732ac11ff8d211ba4b00a0c93ec93b', 'hex');
const SECTOR = 512;

function hasEsp(head: Buffer): boolean {
  const header = head.subarray(SECTOR, SECTOR + 92);
  if (header.length < 92 || header.subarray(0, 8).toString('latin1') !== 'EFI PART') return false;
  const entriesLba = Number(header.readBigUInt64LE(72));
  const count = Math.min(header.readUInt32LE(80), 1024);
  const size = header.readUInt32LE(84);
  if (size < 128) return false;
  const table = head.subarray(entriesLba * SECTOR, entriesLba * SECTOR + count * size);
  for (let i = 0; i + 16 <= table.length; i += size)
    if (table.subarray(i, i + 16).equals(ESP_GUID)) return true;
  return false;
}

export interface BootFinding {
  /** The boot mode the image supports, if any. */
  readonly mode?: BootMode;
  readonly layout: BootLayout;
  /** One phrase saying what was found. */
  readonly what: string;
}

export function inspectBootMode(head: Buffer): BootFinding {
  const layout = inspectBootHead(head);
  if (layout.kind === 'mbr-grub' || layout.kind === 'gpt-grub')
    return { mode: 'legacy-bios', layout, what: "GRUB's i386-pc boot code in the MBR" };
  if (hasEsp(head)) return { mode: 'uefi', layout, what: 'a GPT with an EFI system partition' };
  const what: Record<BootLayout['kind'], string> = {
    'mbr-grub': '',
    'gpt-grub': '',
    'gpt-no-bios-boot': 'a GPT with neither a BIOS boot nor an EFI system partition',
    'gpt-no-loader': 'a GPT without boot code or EFI system partition',
    'mbr-other-loader': 'an MBR whose boot code is not GRUB',
    'mbr-no-loader': 'a partition table without boot code',
    'bare-filesystem': `a bare ${layout.kind === 'bare-filesystem' ? layout.fsType : ''} file system without partition table or boot loader`,
    unknown: 'no partition table, boot signature or known file system',
  };
  return { layout, what: what[layout.kind] };
}
