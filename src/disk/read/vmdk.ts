// Reads a hosted sparse VMDK extent (VMware's Virtual Disk Format 1.1) that is the whole disk:
// monolithicSparse (plain grains) and streamOptimized (deflate grains behind markers, the grain
// directory often only in the footer, the header copy before the end-of-stream marker). The
// embedded descriptor must describe exactly one extent; a descriptor file on its own, a split or
// multi-extent disk, or a differencing (child) disk is refused, since the bytes would be
// incomplete. Grain directory and tables are read in guest order; unallocated and zeroed grains
// are holes. Every size is bounded before allocation: grains of at most 2 MiB, grain tables of at
// most 4096 entries, a grain directory of at most 32 MiB and no larger than the file, inflated
// grains capped at the grain size. Memory: the directory, one table, one read of MAX_CHUNK.
import { type DiskImage, type ImageExtent, MAX_CHUNK, normalized } from './extent.js';
import { type ImageFile, readRun, RunGatherer } from './image-file.js';
import { inflateCapped } from './inflate.js';

export const VMDK_MAGIC = Buffer.from('KDMV', 'latin1');
const SECTOR = 512;
const GD_AT_END = 0xffffffffffffffffn;
const FLAG_NEWLINE_TEST = 0x1;
const FLAG_COMPRESSED = 0x10000;
const FLAG_MARKERS = 0x20000;
const COMPRESS_DEFLATE = 1;
const MARKER_EOS = 0;
const MARKER_FOOTER = 3;
const MAX_GRAIN_SECTORS = 4096;
const MAX_GTES = 4096;
const MAX_GD_BYTES = 32 * 1024 * 1024;
const MAX_DESCRIPTOR = 1024 * 1024;

const CONVERT_HINT = 'convert it to one file with `qemu-img convert -O raw IN OUT` first';

interface SparseHeader {
  version: number;
  flags: number;
  capacity: bigint;
  grainSectors: bigint;
  descriptorOffset: bigint;
  descriptorSectors: bigint;
  gtes: number;
  gdOffset: bigint;
  compression: number;
  newline: Buffer;
}

function parseHeader(h: Buffer): SparseHeader {
  return {
    version: h.readUInt32LE(4),
    flags: h.readUInt32LE(8),
    capacity: h.readBigUInt64LE(12),
    grainSectors: h.readBigUInt64LE(20),
    descriptorOffset: h.readBigUInt64LE(28),
    descriptorSectors: h.readBigUInt64LE(36),
    gtes: h.readUInt32LE(44),
    gdOffset: h.readBigUInt64LE(56),
    compression: h.readUInt16LE(77),
    newline: h.subarray(73, 77),
  };
}

export async function openVmdk(file: ImageFile): Promise<DiskImage> {
  const first = await file.readUpTo(0, SECTOR);
  if (first.length < SECTOR) throw file.error('truncated: the VMDK header is incomplete');
  let h = parseHeader(first);
  if (h.version < 1 || h.version > 3)
    throw file.error(`VMDK sparse extent version ${h.version} is not supported (1 to 3 are)`);
  if (h.flags & FLAG_NEWLINE_TEST && !h.newline.equals(Buffer.from('\n \r\n', 'latin1')))
    throw file.error(
      "corrupt VMDK: the header's newline test characters were changed (a text-mode transfer)",
      'copy the file again in binary mode',
    );
  await checkDescriptor(file, h);

  if (h.gdOffset === GD_AT_END) {
    // streamOptimized, written as a stream: the footer (a copy of the header with the real grain
    // directory offset) sits between its marker and the end-of-stream marker.
    if (file.size < 3 * SECTOR + SECTOR)
      throw file.error('truncated: the streamOptimized VMDK has no footer');
    const tail = await file.read(file.size - 3 * SECTOR, 3 * SECTOR, 'VMDK footer');
    const footerMarker = tail.subarray(0, SECTOR);
    const eos = tail.subarray(2 * SECTOR);
    if (
      footerMarker.readUInt32LE(12) !== MARKER_FOOTER ||
      eos.readUInt32LE(12) !== MARKER_EOS ||
      !tail.subarray(SECTOR, SECTOR + 4).equals(VMDK_MAGIC)
    )
      throw file.error(
        'truncated or corrupt: the streamOptimized VMDK does not end with its footer and end-of-stream marker',
      );
    const footer = parseHeader(tail.subarray(SECTOR, 2 * SECTOR));
    if (footer.gdOffset === GD_AT_END)
      throw file.error('corrupt VMDK: the footer does not give the grain directory offset');
    if (
      footer.capacity !== h.capacity ||
      footer.grainSectors !== h.grainSectors ||
      footer.gtes !== h.gtes ||
      footer.flags !== h.flags
    )
      throw file.error('corrupt VMDK: the footer does not match the header');
    h = footer;
  }

  const grainSectors = Number(h.grainSectors);
  if (grainSectors < 1 || grainSectors > MAX_GRAIN_SECTORS || (grainSectors & (grainSectors - 1)) !== 0)
    throw file.error(
      `corrupt VMDK header: grain size ${h.grainSectors} sectors (a power of two up to 4096 expected)`,
    );
  if (h.gtes < 1 || h.gtes > MAX_GTES)
    throw file.error(`corrupt VMDK header: ${h.gtes} entries per grain table (1 to ${MAX_GTES} expected)`);
  if (h.capacity > BigInt(Math.floor(Number.MAX_SAFE_INTEGER / SECTOR)))
    throw file.error(`corrupt VMDK header: capacity ${h.capacity} sectors is too large`);
  const compressed = (h.flags & FLAG_COMPRESSED) !== 0;
  const markers = (h.flags & FLAG_MARKERS) !== 0;
  if (compressed && h.compression !== COMPRESS_DEFLATE)
    throw file.error(
      `the VMDK uses compression algorithm ${h.compression}; only deflate is supported`,
      CONVERT_HINT,
    );

  const grain = grainSectors * SECTOR;
  const virtualSize = Number(h.capacity) * SECTOR;
  const gtSpan = grain * h.gtes;
  const gdEntries = Math.ceil(virtualSize / gtSpan);
  const gdBytes = gdEntries * 4;
  if (gdBytes > MAX_GD_BYTES || gdBytes > file.size)
    throw file.error(
      `corrupt VMDK header: the grain directory would be ${gdBytes} bytes, more than the file or 32 MiB`,
    );
  const gdOffset = sectorOffset(file, h.gdOffset, 'grain directory');
  if (gdEntries > 0) file.check(gdOffset, gdBytes, 'VMDK grain directory');

  const extents = async function* (): AsyncIterable<ImageExtent> {
    const gd = gdEntries > 0 ? await file.read(gdOffset, gdBytes, 'VMDK grain directory') : Buffer.alloc(0);
    const gather = new RunGatherer(MAX_CHUNK);
    for (let i = 0; i < gdEntries; i++) {
      const gtSector = gd.readUInt32LE(i * 4);
      if (gtSector === 0) continue; // no table: the whole span is a hole
      const gt = await file.read(gtSector * SECTOR, h.gtes * 4, `VMDK grain table ${i}`);
      for (let j = 0; j < h.gtes; j++) {
        const guest = i * gtSpan + j * grain;
        if (guest >= virtualSize) break;
        const length = Math.min(grain, virtualSize - guest);
        const entry = gt.readUInt32LE(j * 4);
        if (entry === 0 || entry === 1) continue; // unallocated or zeroed: a hole
        const host = entry * SECTOR;
        if (!compressed) {
          file.check(host, length, `VMDK grain for guest offset ${guest}`);
          const run = gather.add(guest, host, length);
          if (run) yield* readRun(file, run, MAX_CHUNK, 'VMDK grain');
          continue;
        }
        const run = gather.take();
        if (run) yield* readRun(file, run, MAX_CHUNK, 'VMDK grain');
        yield {
          offset: guest,
          length,
          data: await compressedGrain(file, host, guest, grain, length, markers),
        };
      }
    }
    const run = gather.take();
    if (run) yield* readRun(file, run, MAX_CHUNK, 'VMDK grain');
  };

  return {
    path: file.path,
    format: 'vmdk',
    virtualSize,
    extents: () => normalized(extents(), virtualSize),
    close: () => file.close(),
  };
}

function sectorOffset(file: ImageFile, sector: bigint, what: string): number {
  if (sector > BigInt(Math.floor(Number.MAX_SAFE_INTEGER / SECTOR)))
    throw file.error(`corrupt VMDK header: the ${what} offset ${sector} is impossible`);
  return Number(sector) * SECTOR;
}

/** The embedded descriptor must say one sparse extent, of a kind that is the whole disk. */
async function checkDescriptor(file: ImageFile, h: SparseHeader): Promise<void> {
  const none = (): Error =>
    file.error(
      'the VMDK has no embedded descriptor: it is one extent of a split or multi-file disk, not the whole disk',
      CONVERT_HINT,
    );
  if (h.descriptorOffset === 0n || h.descriptorSectors === 0n) throw none();
  const offset = sectorOffset(file, h.descriptorOffset, 'descriptor');
  const length = Number(h.descriptorSectors) * SECTOR;
  if (h.descriptorSectors > BigInt(MAX_DESCRIPTOR / SECTOR))
    throw file.error(`corrupt VMDK header: the descriptor would be ${h.descriptorSectors} sectors`);
  const text = (await file.read(offset, length, 'VMDK descriptor'))
    .toString('latin1')
    .replace(/\0[\s\S]*$/, '');
  const createType = /^\s*createType\s*=\s*"?([^"\s]*)"?/m.exec(text)?.[1];
  if (createType === undefined) throw none();
  const extentsListed = text.split('\n').filter((l) => /^\s*(RW|RDONLY|NOACCESS)\s+\d+/i.test(l));
  const parent = /^\s*parentFileNameHint\s*=/m.test(text);
  if (parent)
    throw file.error(
      'the VMDK is a differencing (child) disk of another VMDK',
      'convert the whole chain with `qemu-img convert -O raw CHILD.vmdk OUT` first',
    );
  if (!/^(monolithicSparse|streamOptimized)$/i.test(createType))
    throw file.error(
      `the VMDK's descriptor says createType "${createType.slice(0, 40)}"; only monolithicSparse and streamOptimized are read`,
      CONVERT_HINT,
    );
  if (extentsListed.length !== 1)
    throw file.error(
      `the VMDK's descriptor lists ${extentsListed.length} extents; only single-extent disks are read`,
      CONVERT_HINT,
    );
}

/** A compressed grain: behind its marker (LBA, size) when the file has markers, else bare. */
async function compressedGrain(
  file: ImageFile,
  host: number,
  guest: number,
  grain: number,
  length: number,
  markers: boolean,
): Promise<Buffer> {
  const what = `compressed VMDK grain for guest offset ${guest}`;
  // QEMU's bound: a compressed grain never takes more than two grains of room.
  let data: Buffer;
  if (markers) {
    const m = await file.read(host, 12, `${what} (its marker)`);
    const lba = m.readBigUInt64LE(0);
    const size = m.readUInt32LE(8);
    if (lba !== BigInt(guest / SECTOR))
      throw file.error(`corrupt VMDK: the ${what} is marked for sector ${lba}`);
    if (size === 0 || size > 2 * grain) throw file.error(`corrupt VMDK: the ${what} claims ${size} bytes`);
    data = await file.read(host + 12, size, what);
  } else {
    if (host >= file.size) file.check(host, 1, what);
    data = await file.read(host, Math.min(2 * grain, file.size - host), what);
  }
  return inflateCapped(file, data, 'zlib', length, grain, what).subarray(0, length);
}
