// VMDK streamOptimized (VMware's Virtual Disk Format 1.1, the subformat AWS VM Import takes),
// written as a true stream: the sparse extent header (grain directory "at the end"), the embedded
// descriptor, then each 64 KiB grain that holds data as a grain marker (guest sector, compressed
// length) and its zlib (RFC 1950) stream, padded to a sector. A grain table (512 grains, 32 MiB)
// follows the grains it maps, behind its marker, as soon as the writes have moved past it; every
// table is written, empty ones too. Then the grain directory, the footer (the header again, now
// pointing at the directory) and the end-of-stream marker. Holes and all-zero grains are not
// stored. Grains are deflated on libuv's threadpool (libdeflate through the addon, else zlib),
// several at once, and written in order.
// Memory: the directory (4 bytes per 32 MiB), one grain table, the grains being compressed.
import crypto from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { BundleError } from '../errors.js';
import type { TarMember } from '../format/tar-reader.js';
import { nativeAddon } from '../io/native.js';
import { threadpoolSize } from '../io/threadpool.js';
import { roundUp, SECTOR } from './image-sink.js';
import { OutputFile } from './output-file.js';
import { UnitSink } from './unit-sink.js';

const zlibDeflate = promisify<zlib.InputType, zlib.ZlibOptions, Buffer>(zlib.deflate);

const GRAIN_SECTORS = 128;
const GRAIN = GRAIN_SECTORS * SECTOR;
const GTES_PER_GT = 512;
const GT_SECTORS = (GTES_PER_GT * 4) / SECTOR;
/** Sectors before the first grain: header, descriptor, padding to a grain. */
const OVERHEAD_SECTORS = GRAIN_SECTORS;
const GD_AT_END = 0xffffffffffffffffn;
/** Header flags: valid newline test, compressed grains, markers. */
const FLAGS = 0x1 | 0x10000 | 0x20000;
const COMPRESS_DEFLATE = 1;
const MARKER_EOS = 0;
const MARKER_GT = 1;
const MARKER_GD = 2;
const MARKER_FOOTER = 3;
/** Grains being deflated at once: one per threadpool thread. */
const IN_FLIGHT = threadpoolSize();
/** zlib's default level, as VMware and QEMU write (libdeflate's 6 is as small, and faster). */
const LEVEL = 6;
/** zlib stream header: deflate, 32 KiB window, default level (a multiple of 31, as RFC 1950 asks). */
const ZLIB_HEADER = Buffer.from([0x78, 0x9c]);

/**
 * One grain as a zlib (RFC 1950) stream: libdeflate through the addon when it is there (the
 * engine bundles are compressed with), wrapped in the zlib header and Adler-32; else Node's zlib.
 */
async function deflateGrain(grain: Buffer): Promise<Buffer> {
  const addon = nativeAddon();
  if (!addon?.deflatePiece) return zlibDeflate(grain, { level: LEVEL });
  const body = await addon.deflatePiece(grain, LEVEL, true);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32BE(adler32(grain));
  return Buffer.concat([ZLIB_HEADER, body, trailer]);
}

/** Adler-32 (RFC 1950): two sums mod 65521, reduced often enough never to leave exact integers. */
export function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let at = 0; at < data.length;) {
    const end = Math.min(data.length, at + 5552);
    for (; at < end; at++) {
      a += data[at]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

export class VmdkSink extends UnitSink {
  private readonly capacity: number;
  private readonly gd: Uint32Array;
  private gt = new Uint32Array(GTES_PER_GT);
  /** Next grain table to write. */
  private gtNext = 0;
  private readonly compressing: { index: number; done: Promise<Buffer> }[] = [];
  /** The descriptor's content id, random as VMware makes it. */
  private cid: string | undefined;

  constructor(
    finalPath: string,
    private readonly member: TarMember,
  ) {
    // Capacity 0 would mark a descriptor-only header to readers (QEMU refuses it): an empty image
    // becomes a one-sector disk of zeros.
    super(new OutputFile(finalPath), GRAIN);
    this.capacity = Math.max(1, Math.ceil(member.size / SECTOR));
    this.gd = new Uint32Array(Math.ceil(this.capacity / (GRAIN_SECTORS * GTES_PER_GT)));
  }

  override async open(): Promise<void> {
    await this.file.open();
    const descriptor = Buffer.from(this.descriptor(), 'ascii');
    const descriptorSectors = Math.ceil(descriptor.length / SECTOR);
    if (1 + descriptorSectors > OVERHEAD_SECTORS) throw new Error('VMDK descriptor too long');
    const head = Buffer.alloc(OVERHEAD_SECTORS * SECTOR);
    this.header(GD_AT_END, descriptorSectors).copy(head, 0);
    descriptor.copy(head, SECTOR);
    await this.file.append(head);
  }

  protected async unit(index: number, data: Buffer): Promise<void> {
    const done = deflateGrain(data);
    done.catch(() => undefined); // surfaced when awaited, in order
    this.compressing.push({ index, done });
    if (this.compressing.length >= IN_FLIGHT) await this.placeOldest();
  }

  private async placeOldest(): Promise<void> {
    const { index, done } = this.compressing.shift()!;
    const compressed = await done;
    const table = Math.floor(index / GTES_PER_GT);
    while (this.gtNext < table) await this.writeGrainTable();
    this.gt[index % GTES_PER_GT] = this.sector();
    const marker = Buffer.alloc(12);
    marker.writeBigUInt64LE(BigInt(index * GRAIN_SECTORS), 0);
    marker.writeUInt32LE(compressed.length, 8);
    await this.file.append(marker);
    await this.file.append(compressed);
    await this.file.append(padding(12 + compressed.length));
  }

  private async writeGrainTable(): Promise<void> {
    await this.file.append(marker(GT_SECTORS, MARKER_GT));
    this.gd[this.gtNext++] = this.sector();
    await this.file.append(littleEndian(this.gt));
    this.gt = new Uint32Array(GTES_PER_GT);
  }

  /** The append position as a table entry: a 32-bit sector number, so the file stops at 2 TiB. */
  private sector(): number {
    const sector = this.file.position / SECTOR;
    if (sector > 0xffffffff)
      throw new BundleError(
        'the VMDK would pass 2 TiB, the most its grain tables can address',
        'restore with --format qcow2 or raw',
      );
    return sector;
  }

  async commit(): Promise<string> {
    await this.cutter.finish();
    while (this.compressing.length > 0) await this.placeOldest();
    while (this.gtNext < this.gd.length) await this.writeGrainTable();
    const gdBytes = roundUp(this.gd.length * 4, SECTOR);
    await this.file.append(marker(gdBytes / SECTOR, MARKER_GD));
    const gdSector = this.sector();
    const gd = Buffer.alloc(gdBytes);
    littleEndian(this.gd).copy(gd);
    await this.file.append(gd);
    await this.file.append(marker(1, MARKER_FOOTER));
    const footer = Buffer.alloc(SECTOR);
    this.header(BigInt(gdSector), Math.ceil(Buffer.byteLength(this.descriptor()) / SECTOR)).copy(footer);
    await this.file.append(footer);
    await this.file.append(marker(0, MARKER_EOS));
    await this.file.flush();
    return this.file.commit(this.file.position, this.member.mode, this.member.mtime);
  }

  private descriptor(): string {
    this.cid ??= crypto.randomBytes(4).toString('hex');
    const cylinders = Math.min(65535, Math.floor(this.capacity / (16 * 63)));
    return [
      '# Disk DescriptorFile',
      'version=1',
      `CID=${this.cid}`,
      'parentCID=ffffffff',
      'createType="streamOptimized"',
      '',
      '# Extent description',
      `RW ${this.capacity} SPARSE "${path.basename(this.file.finalPath).replace(/["\\]/g, '_')}"`,
      '',
      '# The Disk Data Base',
      '#DDB',
      '',
      'ddb.virtualHWVersion = "4"',
      `ddb.geometry.cylinders = "${cylinders}"`,
      'ddb.geometry.heads = "16"',
      'ddb.geometry.sectors = "63"',
      'ddb.adapterType = "ide"',
      '',
    ].join('\n');
  }

  /** The sparse extent header (little-endian), as the first sector and again as the footer. */
  private header(gdOffset: bigint, descriptorSectors: number): Buffer {
    const h = Buffer.alloc(SECTOR);
    h.write('KDMV', 0, 'latin1');
    h.writeUInt32LE(3, 4); // version 3: compressed grains
    h.writeUInt32LE(FLAGS, 8);
    h.writeBigUInt64LE(BigInt(this.capacity), 12);
    h.writeBigUInt64LE(BigInt(GRAIN_SECTORS), 20);
    h.writeBigUInt64LE(1n, 28); // descriptor right after the header
    h.writeBigUInt64LE(BigInt(descriptorSectors), 36);
    h.writeUInt32LE(GTES_PER_GT, 44);
    h.writeBigUInt64LE(0n, 48); // no redundant grain directory
    h.writeBigUInt64LE(gdOffset, 56);
    h.writeBigUInt64LE(BigInt(OVERHEAD_SECTORS), 64);
    h[72] = 0; // cleanly closed
    h.write('\n \r\n', 73, 'latin1'); // the newline-corruption test characters
    h.writeUInt16LE(COMPRESS_DEFLATE, 77);
    return h;
  }

  async discard(): Promise<void> {
    // Let the grains in flight finish (their errors no longer matter) before removing the file.
    await Promise.allSettled(this.compressing.map((c) => c.done));
    this.compressing.length = 0;
    await this.file.discard();
  }
}

/** A metadata marker sector: how many sectors of metadata follow, and their kind. */
function marker(sectors: number, type: number): Buffer {
  const m = Buffer.alloc(SECTOR);
  m.writeBigUInt64LE(BigInt(sectors), 0);
  m.writeUInt32LE(0, 8);
  m.writeUInt32LE(type, 12);
  return m;
}

function padding(length: number): Buffer {
  return Buffer.alloc(roundUp(length, SECTOR) - length);
}

function littleEndian(entries: Uint32Array): Buffer {
  const out = Buffer.alloc(entries.length * 4);
  for (let i = 0; i < entries.length; i++) out.writeUInt32LE(entries[i]!, i * 4);
  return out;
}
