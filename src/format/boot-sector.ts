// Whether a disk image can boot under HVM (BIOS): an MBR boot signature with GRUB's boot code,
// and for GPT a BIOS-boot partition to hold GRUB's core image. A bare file system (what
// `bundle-vol -P none` makes) has none of this and only suits paravirtual launches.
// It lives in format/ because it only reads the on-disk layout: doctor and to-ebs both ask it.
import fs from 'node:fs';

export type BootLayout =
  | { readonly kind: 'mbr-grub' }
  | { readonly kind: 'gpt-grub' }
  | { readonly kind: 'gpt-no-bios-boot' }
  | { readonly kind: 'gpt-no-loader' }
  | { readonly kind: 'mbr-other-loader' }
  | { readonly kind: 'mbr-no-loader' }
  | { readonly kind: 'bare-filesystem'; readonly fsType: string }
  | { readonly kind: 'unknown' };

/** GUID of a BIOS boot partition (21686148-6449-6E6F-744E-656564454649) as stored on disk. */
const BIOS_BOOT_GUID = Buffer.from('4861682149646f6e744e656564454649', 'hex');
const SECTOR = 512;

/** Reads up to `length` bytes at `offset` (fewer at the end of the image). */
type ReadAt = (offset: number, length: number) => Buffer;

function fileReader(fd: number): ReadAt {
  return (offset, length) => {
    const buf = Buffer.alloc(length);
    const n = fs.readSync(fd, buf, 0, length, offset);
    return buf.subarray(0, n);
  };
}

/** File systems a bare image may hold, by their superblock magic. */
function bareFilesystem(readAt: ReadAt): string | undefined {
  const ext = readAt(1024 + 56, 2);
  if (ext.length === 2 && ext.readUInt16LE(0) === 0xef53) return 'ext2/3/4';
  if (readAt(0, 4).toString('latin1') === 'XFSB') return 'xfs';
  if (readAt(0x10040, 8).toString('latin1') === '_BHRfS_M') return 'btrfs';
  return undefined;
}

/** GRUB's boot.img carries its name among its error strings; other loaders do not. */
function hasGrubBootCode(mbr: Buffer): boolean {
  return mbr.subarray(0, 440).includes('GRUB', 0, 'latin1');
}

function hasBiosBootPartition(readAt: ReadAt): boolean {
  const header = readAt(SECTOR, 92);
  if (header.length < 92 || header.subarray(0, 8).toString('latin1') !== 'EFI PART') return false;
  const entriesLba = Number(header.readBigUInt64LE(72));
  const count = Math.min(header.readUInt32LE(80), 1024);
  const size = header.readUInt32LE(84);
  if (size < 128) return false;
  const table = readAt(entriesLba * SECTOR, count * size);
  for (let i = 0; i + 16 <= table.length; i += size)
    if (table.subarray(i, i + 16).equals(BIOS_BOOT_GUID)) return true;
  return false;
}

export function inspectBootSector(imagePath: string): BootLayout {
  const fd = fs.openSync(imagePath, 'r');
  try {
    return inspectBoot(fileReader(fd));
  } finally {
    fs.closeSync(fd);
  }
}

/** The same from the first bytes of an image (to-ebs sees them before anything is uploaded). */
export function inspectBootHead(head: Buffer): BootLayout {
  return inspectBoot((offset, length) => head.subarray(offset, offset + length));
}

function inspectBoot(readAt: ReadAt): BootLayout {
  const mbr = readAt(0, SECTOR);
  const signed = mbr.length === SECTOR && mbr[510] === 0x55 && mbr[511] === 0xaa;
  if (!signed) {
    const fsType = bareFilesystem(readAt);
    return fsType !== undefined ? { kind: 'bare-filesystem', fsType } : { kind: 'unknown' };
  }
  // A protective MBR entry (type 0xEE) means the partitions are in a GPT.
  const gpt = [0, 1, 2, 3].some((i) => mbr[446 + i * 16 + 4] === 0xee);
  if (gpt) {
    if (!hasBiosBootPartition(readAt)) return { kind: 'gpt-no-bios-boot' };
    return hasGrubBootCode(mbr) ? { kind: 'gpt-grub' } : { kind: 'gpt-no-loader' };
  }
  if (hasGrubBootCode(mbr)) return { kind: 'mbr-grub' };
  return mbr.subarray(0, 440).some((b) => b !== 0) ? { kind: 'mbr-other-loader' } : { kind: 'mbr-no-loader' };
}
