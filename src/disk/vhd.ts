// VHD (Microsoft's Virtual Hard Disk Image Format Specification), dynamic and fixed. Both end with
// the 512-byte footer: cookie, creation time, disk size, CHS geometry, type, checksum, unique id.
// The disk size is the image's rounded up so that the CHS geometry covers it exactly: Virtual PC,
// and QEMU up to 9.x for images from creators it does not know, size a VHD by its geometry, so a
// size between two geometries would lose its tail there; the added sectors read as zeros. Above
// the largest geometry (about 127 GiB) every reader takes the footer's size, kept exact to a sector.
// An empty image becomes the smallest geometry's 34 KiB of zeros.
//
// Fixed: the raw image (sparse, through restore/image-writer.ts) with the footer after it.
// Dynamic, written in one pass: a copy of the footer, the dynamic header and the block allocation
// table laid out ahead (the size is known), then each 2 MiB block that holds data as its sector
// bitmap (all sectors present) and its data, in guest order; holes and all-zero blocks stay
// unallocated. The table is filled in at the end. Memory: the table (4 bytes per 2 MiB), one block.
import crypto from 'node:crypto';
import { BundleError } from '../errors.js';
import type { TarMember } from '../format/tar-reader.js';
import { ImageWriter } from '../restore/image-writer.js';
import { roundUp, SECTOR, type ImageSink } from './image-sink.js';
import { OutputFile } from './output-file.js';
import { UnitSink } from './unit-sink.js';

const BLOCK = 2 * 1024 * 1024;
const BITMAP = roundUp(BLOCK / SECTOR / 8, SECTOR);
const DYNAMIC_HEADER = 1024;
const BAT_OFFSET = SECTOR + DYNAMIC_HEADER;
const UNUSED = 0xffffffff;
/** Seconds from the Unix epoch to VHD's, 2000-01-01 00:00:00 UTC. */
const VHD_EPOCH = 946_684_800;
const DISK_FIXED = 2;
const DISK_DYNAMIC = 3;
/** The largest geometry: 65535 cylinders, 16 heads, 255 sectors per track. */
const MAX_CHS_SECTORS = 65535 * 16 * 255;

export interface Geometry {
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
}

/** The specification's CHS geometry for a disk of `totalSectors`. */
export function chsGeometry(totalSectors: number): Geometry {
  const total = Math.min(totalSectors, MAX_CHS_SECTORS);
  let spt: number;
  let heads: number;
  let cylTimesHeads: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cylTimesHeads = Math.floor(total / spt);
  } else {
    spt = 17;
    cylTimesHeads = Math.floor(total / spt);
    heads = Math.max(4, Math.floor((cylTimesHeads + 1023) / 1024));
    if (cylTimesHeads >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cylTimesHeads = Math.floor(total / spt);
    }
    if (cylTimesHeads >= heads * 1024) {
      spt = 63;
      heads = 16;
      cylTimesHeads = Math.floor(total / spt);
    }
  }
  return { cylinders: Math.floor(cylTimesHeads / heads), heads, sectorsPerTrack: spt };
}

function chsSectors(g: Geometry): number {
  return g.cylinders * g.heads * g.sectorsPerTrack;
}

/** The specification's largest disk: 2040 GiB (its 32-bit sector offsets stop at 2 TiB). */
export const MAX_VHD_BYTES = 2040 * 1024 ** 3;

/** The VHD disk size for an image of `size` bytes and its geometry (see the opening comment). */
export function vhdSize(size: number): { bytes: number; geometry: Geometry } {
  if (size > MAX_VHD_BYTES)
    throw new BundleError(
      `the image is ${size} bytes, more than a VHD can hold (2040 GiB)`,
      'restore with --format qcow2, vmdk or raw',
    );
  // An empty image gets the smallest geometry: a fixed VHD of nothing would be a lone footer at
  // offset 0, which readers take for the header copy of a dynamic one.
  const sectors = Math.max(1, Math.ceil(size / SECTOR));
  if (sectors >= MAX_CHS_SECTORS) return { bytes: sectors * SECTOR, geometry: chsGeometry(sectors) };
  for (let t = sectors; ; t++) {
    const geometry = chsGeometry(t);
    if (chsSectors(geometry) >= sectors) return { bytes: chsSectors(geometry) * SECTOR, geometry };
  }
}

/** The one's complement of the byte sum (the checksum field itself counted as zero). */
function checksum(buf: Buffer, at: number): void {
  buf.writeUInt32BE(0, at);
  let sum = 0;
  for (const b of buf) sum += b;
  buf.writeUInt32BE(~sum >>> 0, at);
}

function footer(diskBytes: number, geometry: Geometry, type: number, dataOffset: bigint): Buffer {
  const f = Buffer.alloc(SECTOR);
  f.write('conectix', 0, 'latin1');
  f.writeUInt32BE(2, 8); // features: the reserved bit that must be set
  f.writeUInt32BE(0x00010000, 12); // format version 1.0
  f.writeBigUInt64BE(dataOffset, 16);
  f.writeUInt32BE(Math.max(0, Math.floor(Date.now() / 1000) - VHD_EPOCH) >>> 0, 24);
  f.write('amib', 28, 'latin1'); // creator application
  f.writeUInt32BE(0x00000001, 32); // creator version
  f.write('Wi2k', 36, 'latin1'); // creator host OS, as other non-Microsoft writers give
  f.writeBigUInt64BE(BigInt(diskBytes), 40); // original size
  f.writeBigUInt64BE(BigInt(diskBytes), 48); // current size
  f.writeUInt16BE(geometry.cylinders, 56);
  f[58] = geometry.heads;
  f[59] = geometry.sectorsPerTrack;
  f.writeUInt32BE(type, 60);
  crypto.randomFillSync(f, 68, 16); // unique id
  f[84] = 0; // no saved state
  checksum(f, 64);
  return f;
}

/** `--format vhd-fixed`: the sparse raw image, then the footer at the (geometry-rounded) disk size. */
export class VhdFixedSink implements ImageSink {
  private readonly raw: ImageWriter;
  private readonly disk: { bytes: number; geometry: Geometry };

  constructor(destination: string, member: TarMember, name: string) {
    this.disk = vhdSize(member.size);
    this.raw = new ImageWriter(destination, { ...member, name, size: this.disk.bytes + SECTOR });
  }

  get path(): string {
    return this.raw.path;
  }

  get bytesWritten(): number {
    return this.raw.bytesWritten;
  }

  get replaced(): string | undefined {
    return this.raw.replaced;
  }

  open(): Promise<void> {
    return this.raw.open();
  }

  write(offset: number, chunk: Buffer): Promise<void> {
    return this.raw.write(offset, chunk);
  }

  async commit(): Promise<string> {
    const f = footer(this.disk.bytes, this.disk.geometry, DISK_FIXED, 0xffffffffffffffffn);
    await this.raw.write(this.disk.bytes, f);
    return this.raw.commit();
  }

  discard(): Promise<void> {
    return this.raw.discard();
  }
}

/** `--format vhd`: a dynamic VHD. */
export class VhdDynamicSink extends UnitSink {
  private readonly disk: { bytes: number; geometry: Geometry };
  private readonly bat: Uint32Array;
  private readonly bitmap = Buffer.alloc(BITMAP, 0xff);

  constructor(
    finalPath: string,
    private readonly member: TarMember,
  ) {
    const disk = vhdSize(member.size);
    const blocks = Math.ceil(disk.bytes / BLOCK);
    super(new OutputFile(finalPath, BAT_OFFSET + roundUp(blocks * 4, SECTOR)), BLOCK);
    this.disk = disk;
    this.bat = new Uint32Array(blocks).fill(UNUSED);
  }

  protected async unit(index: number, data: Buffer): Promise<void> {
    this.bat[index] = this.file.position / SECTOR;
    await this.file.append(this.bitmap);
    await this.file.append(data);
  }

  async commit(): Promise<string> {
    await this.cutter.finish();
    const f = footer(this.disk.bytes, this.disk.geometry, DISK_DYNAMIC, BigInt(SECTOR));
    await this.file.append(f);
    await this.file.flush();
    const bat = Buffer.alloc(roundUp(this.bat.length * 4, SECTOR), 0xff);
    for (let i = 0; i < this.bat.length; i++) bat.writeUInt32BE(this.bat[i]!, i * 4);
    await this.file.writeAt(BAT_OFFSET, bat);
    await this.file.writeAt(SECTOR, this.dynamicHeader());
    await this.file.writeAt(0, f);
    return this.file.commit(this.file.position, this.member.mode, this.member.mtime);
  }

  private dynamicHeader(): Buffer {
    const h = Buffer.alloc(DYNAMIC_HEADER);
    h.write('cxsparse', 0, 'latin1');
    h.writeBigUInt64BE(0xffffffffffffffffn, 8); // no further structure
    h.writeBigUInt64BE(BigInt(BAT_OFFSET), 16);
    h.writeUInt32BE(0x00010000, 24); // header version 1.0
    h.writeUInt32BE(this.bat.length, 28);
    h.writeUInt32BE(BLOCK, 32);
    // 40 onwards: no parent (a dynamic, not a differencing, disk)
    checksum(h, 36);
    return h;
  }

  async discard(): Promise<void> {
    await this.file.discard();
  }
}
