// Reads VHD (Microsoft's Virtual Hard Disk Image Format Specification), fixed and dynamic. The
// guest size is the footer's current size (the specification's; QEMU does the same for images
// from the creators it knows). Fixed: the data, then the footer in the last 512 bytes. Dynamic:
// a footer copy at 0, the dynamic header ("cxsparse"), the block allocation table, and each
// allocated block as its sector bitmap then its data; a sector whose bit is clear, like a block
// with no table entry, is a hole. A differencing disk (its clear bits mean "the parent's
// sectors") is refused. Checksums are verified; the table, block size and every block are
// bounded by the file and the guest size before anything is allocated. Memory: the table (at
// most 32 MiB), one bitmap, one read of MAX_CHUNK.
import { type DiskImage, type ImageExtent, MAX_CHUNK, normalized } from './extent.js';
import { type ImageFile, readRun, RunGatherer } from './image-file.js';
import { openRaw } from './raw.js';

export const VHD_COOKIE = Buffer.from('conectix', 'latin1');
const DYNAMIC_COOKIE = Buffer.from('cxsparse', 'latin1');
const SECTOR = 512;
const FOOTER = 512;
const DYNAMIC_HEADER = 1024;
const DISK_FIXED = 2;
const DISK_DYNAMIC = 3;
const DISK_DIFFERENCING = 4;
const UNUSED = 0xffffffff;
const MAX_BLOCK = 256 * 1024 * 1024;
const MAX_BAT_BYTES = 32 * 1024 * 1024;

/** The one's complement of the byte sum with the checksum field counted as zero. */
function checksumOk(buf: Buffer, at: number): boolean {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < at || i >= at + 4) sum += buf[i]!;
  return ~sum >>> 0 === buf.readUInt32BE(at);
}

/** Opens the VHD whose footer is `footer` (from the end of the file for a fixed disk, else from 0). */
export async function openVhd(file: ImageFile, footer: Buffer): Promise<DiskImage> {
  if (footer.length < FOOTER) throw file.error('truncated: the VHD footer is incomplete');
  if (!checksumOk(footer, 64)) throw file.error('corrupt VHD: the footer checksum does not match');
  const type = footer.readUInt32BE(60);
  const size = footer.readBigUInt64BE(48);
  if (size > BigInt(Number.MAX_SAFE_INTEGER))
    throw file.error(`corrupt VHD footer: disk size ${size} is too large`);
  const virtualSize = Number(size);
  if (type === DISK_DIFFERENCING)
    throw file.error(
      'the VHD is a differencing disk (it holds only the changes to a parent VHD)',
      'merge it with its parent first, e.g. `qemu-img convert -O raw CHILD.vhd OUT` with the parent beside it',
    );
  if (type === DISK_FIXED) {
    if (virtualSize + FOOTER > file.size)
      throw file.error(
        `truncated: the fixed VHD says ${virtualSize} bytes of disk but the file holds ${file.size - FOOTER} before its footer`,
      );
    return openRaw(file, 'vhd-fixed', virtualSize);
  }
  if (type !== DISK_DYNAMIC)
    throw file.error(`the VHD disk type ${type} is not one amibundle reads (fixed 2, dynamic 3)`);
  return openDynamic(file, footer, virtualSize);
}

async function openDynamic(file: ImageFile, footer: Buffer, virtualSize: number): Promise<DiskImage> {
  // The closing footer must be there too: without it the file was cut short.
  const last = await file.readUpTo(Math.max(0, file.size - FOOTER), FOOTER);
  if (file.size < FOOTER * 2 || !last.subarray(0, 8).equals(VHD_COOKIE))
    throw file.error('truncated: the dynamic VHD does not end with its footer');
  const headerOffset = footer.readBigUInt64BE(16);
  if (headerOffset > BigInt(file.size))
    throw file.error(
      `corrupt VHD footer: the dynamic header offset ${headerOffset} lies past the end of the file`,
    );
  const header = await file.read(Number(headerOffset), DYNAMIC_HEADER, 'VHD dynamic header');
  if (!header.subarray(0, 8).equals(DYNAMIC_COOKIE))
    throw file.error('corrupt VHD: no dynamic header ("cxsparse") where the footer points');
  if (!checksumOk(header, 36)) throw file.error('corrupt VHD: the dynamic header checksum does not match');
  const batOffset = header.readBigUInt64BE(16);
  const entries = header.readUInt32BE(28);
  const block = header.readUInt32BE(32);
  if (block < SECTOR || block > MAX_BLOCK || (block & (block - 1)) !== 0)
    throw file.error(
      `corrupt VHD dynamic header: block size ${block} (a power of two from 512 bytes to 256 MiB expected)`,
    );
  const blocks = Math.ceil(virtualSize / block);
  if (entries < blocks)
    throw file.error(
      `corrupt VHD dynamic header: the block table has ${entries} entries, the disk size needs ${blocks}`,
    );
  const batBytes = blocks * 4;
  if (batBytes > MAX_BAT_BYTES)
    throw file.error(`the VHD block table would be ${batBytes} bytes, more than 32 MiB`);
  if (batOffset > BigInt(file.size))
    throw file.error(
      `corrupt VHD dynamic header: the block table offset ${batOffset} lies past the end of the file`,
    );
  file.check(Number(batOffset), batBytes, 'VHD block allocation table');
  const sectorsPerBlock = block / SECTOR;
  const bitmapBytes = Math.ceil(Math.ceil(sectorsPerBlock / 8) / SECTOR) * SECTOR;

  const extents = async function* (): AsyncIterable<ImageExtent> {
    const bat =
      blocks > 0
        ? await file.read(Number(batOffset), batBytes, 'VHD block allocation table')
        : Buffer.alloc(0);
    const gather = new RunGatherer(MAX_CHUNK);
    for (let b = 0; b < blocks; b++) {
      const entry = bat.readUInt32BE(b * 4);
      if (entry === UNUSED) continue;
      const start = entry * SECTOR;
      const guestBase = b * block;
      const inGuest = Math.min(block, virtualSize - guestBase);
      const bitmap = await file.read(start, bitmapBytes, `VHD sector bitmap of block ${b}`);
      const data = start + bitmapBytes;
      // Runs of present sectors, read as data; the rest are holes.
      const sectors = Math.ceil(inGuest / SECTOR);
      for (let s = 0; s < sectors;) {
        if (!(bitmap[s >> 3]! & (0x80 >> (s & 7)))) {
          s++;
          continue;
        }
        let e = s + 1;
        while (e < sectors && bitmap[e >> 3]! & (0x80 >> (e & 7))) e++;
        const guest = guestBase + s * SECTOR;
        const length = Math.min(e * SECTOR, inGuest) - s * SECTOR;
        file.check(data + s * SECTOR, length, `VHD block ${b}`);
        const run = gather.add(guest, data + s * SECTOR, length);
        if (run) yield* readRun(file, run, MAX_CHUNK, 'VHD block');
        s = e;
      }
    }
    const run = gather.take();
    if (run) yield* readRun(file, run, MAX_CHUNK, 'VHD block');
  };

  return {
    path: file.path,
    format: 'vhd',
    virtualSize,
    extents: () => normalized(extents(), virtualSize),
    close: () => file.close(),
  };
}
