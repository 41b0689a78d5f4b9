// openDiskImage(): what an image file is, told by its headers and never by its name, and a reader
// for it. qcow2 ("QFI\xfb"), sparse VMDK ("KDMV"), VHD ("conectix" at the start for dynamic and
// differencing disks, in the last 512 bytes for fixed ones); anything else is raw. Formats that
// would be misread as raw (VHDX, VDI, QED, an ESX "COWD" extent, a VMDK descriptor file) are
// refused with the qemu-img command that turns them into something readable: treating them as
// raw bytes is how corrupt AMIs are made.
import fs from 'node:fs';
import { MissingFileError } from '../../errors.js';
import type { DiskImage } from './extent.js';
import { ImageFile } from './image-file.js';
import { openQcow2, QCOW2_MAGIC } from './qcow2.js';
import { openRaw } from './raw.js';
import { openVhd, VHD_COOKIE } from './vhd.js';
import { openVmdk, VMDK_MAGIC } from './vmdk.js';

export type { DiskImage, ImageExtent } from './extent.js';
export { MAX_CHUNK } from './extent.js';

const RAW_HINT = 'convert it with `qemu-img convert -O raw IN OUT` first';

/** Magic numbers of formats amibundle does not read, so they are never taken for raw. */
const REFUSED: readonly { at: number; magic: Buffer; what: string }[] = [
  { at: 0, magic: Buffer.from('vhdxfile', 'latin1'), what: 'a VHDX image' },
  { at: 64, magic: Buffer.from([0x7f, 0x10, 0xda, 0xbe]), what: 'a VirtualBox VDI image' },
  { at: 0, magic: Buffer.from('QED\0', 'latin1'), what: 'a QED image' },
  { at: 0, magic: Buffer.from('COWD', 'latin1'), what: 'an ESX sparse VMDK extent (COWD)' },
  {
    at: 0,
    magic: Buffer.from('# Disk DescriptorFile', 'latin1'),
    what: 'a VMDK descriptor file (the data is in other files)',
  },
];

/** Opens `path` as a disk image of whatever format its headers say. */
export async function openDiskImage(path: string): Promise<DiskImage> {
  const stat = await fs.promises.stat(path).catch(() => undefined);
  if (!stat) throw new MissingFileError(`${path}: no such file`);
  if (stat.isDirectory()) throw new MissingFileError(`${path} is a directory, not a disk image`);
  const file = await ImageFile.open(path, stat.isBlockDevice() ? blockDeviceSize(stat) : undefined);
  try {
    return await open(file);
  } catch (error) {
    await file.close();
    throw error;
  }
}

async function open(file: ImageFile): Promise<DiskImage> {
  const head = await file.readUpTo(0, 512);
  if (startsWith(head, 0, QCOW2_MAGIC)) return openQcow2(file);
  if (startsWith(head, 0, VMDK_MAGIC)) return openVmdk(file);
  if (startsWith(head, 0, VHD_COOKIE)) return openVhd(file, head);
  for (const r of REFUSED)
    if (startsWith(head, r.at, r.magic))
      throw file.error(`the file is ${r.what}, which amibundle does not read`, RAW_HINT);
  if (file.size >= 1024) {
    const tail = await file.readUpTo(file.size - 512, 512);
    if (startsWith(tail, 0, VHD_COOKIE)) return openVhd(file, tail);
  }
  return openRaw(file);
}

function startsWith(buf: Buffer, at: number, magic: Buffer): boolean {
  return buf.length >= at + magic.length && buf.subarray(at, at + magic.length).equals(magic);
}

/** A block device's size from sysfs (stat gives 0 for devices). */
function blockDeviceSize(stat: fs.Stats): number {
  const major = Math.floor(stat.rdev / 256) & 0xfff;
  const minor = (stat.rdev & 0xff) | ((Math.floor(stat.rdev / 4096) & 0xfff00) >>> 0);
  const sectors = Number(fs.readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim());
  return sectors * 512;
}
