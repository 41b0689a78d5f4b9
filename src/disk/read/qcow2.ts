// Reads qcow2 versions 2 and 3 (docs/interop/qcow2.txt in QEMU): the header, the active L1
// table, then one L2 table at a time, in guest order. Unallocated and zero clusters are holes
// (there is no backing file: an image that has one is refused, as is anything whose bytes this
// reader cannot produce exactly: encryption, an external data file, zstd, extended L2 entries,
// unknown incompatible features, the corrupt mark). Snapshots are ignored: the active L1 table is
// the disk. Every offset is checked against the file and every table size against the virtual
// size before anything is allocated; the L1 table is capped at 32 MiB as QEMU caps it. Two guest
// clusters mapped to one host cluster (only a broken image does that) read the same bytes, as
// QEMU reads them. Memory: the L1 table, one L2 table, one read of at most MAX_CHUNK.
import { type DiskImage, type ImageExtent, MAX_CHUNK, normalized } from './extent.js';
import { type ImageFile, readRun, RunGatherer } from './image-file.js';
import { inflateCapped } from './inflate.js';

export const QCOW2_MAGIC = Buffer.from('QFI\xfb', 'latin1');
const V2_HEADER_LENGTH = 72;
const MIN_CLUSTER_BITS = 9;
const MAX_CLUSTER_BITS = 21;
/** QEMU's QCOW_MAX_L1_SIZE: 32 MiB of L1 entries. */
const MAX_L1_BYTES = 32 * 1024 * 1024;

const INCOMPAT_DIRTY = 1n << 0n;
const INCOMPAT_CORRUPT = 1n << 1n;
const INCOMPAT_DATA_FILE = 1n << 2n;
const INCOMPAT_COMPRESSION = 1n << 3n;
const INCOMPAT_EXTENDED_L2 = 1n << 4n;

const EXT_END = 0;
const EXT_DATA_FILE = 0x44415441;
const EXT_ENCRYPTION = 0x0537be77;

const HINT = 'convert it with `qemu-img convert -O raw IN OUT` first';

export async function openQcow2(file: ImageFile): Promise<DiskImage> {
  const head = await file.readUpTo(0, 512);
  if (head.length < V2_HEADER_LENGTH) throw file.error('truncated: the qcow2 header is incomplete');
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3)
    throw file.error(`qcow2 version ${version} is not supported (only 2 and 3 are)`);
  const backingOffset = head.readBigUInt64BE(8);
  if (backingOffset !== 0n)
    throw file.error(
      'the qcow2 image has a backing file (it holds only the differences from another image)',
      'flatten it first: `qemu-img convert -O qcow2 IN OUT` reads through the backing chain',
    );
  const clusterBits = head.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS)
    throw file.error(`corrupt qcow2 header: cluster_bits ${clusterBits} is outside 9 to 21`);
  const cluster = 2 ** clusterBits;
  const size = head.readBigUInt64BE(24);
  if (size > BigInt(Number.MAX_SAFE_INTEGER))
    throw file.error(`corrupt qcow2 header: virtual size ${size} is too large`);
  const virtualSize = Number(size);
  if (head.readUInt32BE(32) !== 0)
    throw file.error('the qcow2 image is encrypted; amibundle cannot read encrypted qcow2', HINT);
  const l1Size = head.readUInt32BE(36);
  const l1Offset = Number(head.readBigUInt64BE(40));

  let compressionType = 0;
  let headerLength = V2_HEADER_LENGTH;
  if (version === 3) {
    if (head.length < 104) throw file.error('truncated: the qcow2 v3 header is incomplete');
    headerLength = head.readUInt32BE(100);
    if (headerLength < 104 || headerLength > 512 || headerLength % 8 !== 0)
      throw file.error(`corrupt qcow2 header: header_length ${headerLength}`);
    if (head.length < headerLength) throw file.error('truncated: the qcow2 v3 header is incomplete');
    const incompatible = head.readBigUInt64BE(72);
    if (incompatible & INCOMPAT_CORRUPT)
      throw file.error(
        'the qcow2 image is marked corrupt by QEMU',
        'check and repair it with `qemu-img check -r all IMAGE` first',
      );
    if (incompatible & INCOMPAT_DATA_FILE)
      throw file.error(
        'the qcow2 image keeps its data in an external data file, which is not supported',
        HINT,
      );
    if (incompatible & INCOMPAT_EXTENDED_L2)
      throw file.error(
        'the qcow2 image uses extended L2 entries (subclusters), which are not supported',
        HINT,
      );
    if (headerLength > 104) compressionType = head[104]!;
    if ((incompatible & INCOMPAT_COMPRESSION) === 0n && compressionType !== 0)
      throw file.error(`corrupt qcow2 header: compression type ${compressionType} without its feature bit`);
    if (compressionType !== 0)
      throw file.error(
        `the qcow2 image uses compression type ${compressionType === 1 ? 'zstd' : compressionType}; only deflate is supported`,
        HINT,
      );
    const known =
      INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTENDED_L2;
    const unknown = incompatible & ~known;
    if (unknown !== 0n)
      throw file.error(
        `the qcow2 image uses incompatible features amibundle does not know (bits 0x${unknown.toString(16)})`,
        HINT,
      );
  }
  await checkExtensions(file, headerLength, Math.min(cluster, file.size));

  const l2Entries = cluster / 8;
  const l2Span = cluster * l2Entries;
  const needed = Math.ceil(virtualSize / l2Span);
  if (l1Size < needed)
    throw file.error(
      `corrupt qcow2 header: the L1 table has ${l1Size} entries, the virtual size needs ${needed}`,
    );
  if (needed * 8 > MAX_L1_BYTES)
    throw file.error(`the qcow2 L1 table would be ${needed * 8} bytes, more than the 32 MiB QEMU allows`);
  if (needed > 0) {
    if (l1Offset % cluster !== 0)
      throw file.error(`corrupt qcow2 header: the L1 table offset ${l1Offset} is not cluster-aligned`);
    file.check(l1Offset, needed * 8, 'qcow2 L1 table');
  }

  const extents = async function* (): AsyncIterable<ImageExtent> {
    const l1 = needed > 0 ? await file.read(l1Offset, needed * 8, 'qcow2 L1 table') : Buffer.alloc(0);
    const gather = new RunGatherer(MAX_CHUNK);
    for (let i = 0; i < needed; i++) {
      const hi = l1.readUInt32BE(i * 8);
      const lo = l1.readUInt32BE(i * 8 + 4);
      if ((hi & 0x7f000000) !== 0 || (lo & 0x1ff) !== 0)
        throw file.error(`corrupt qcow2 L1 entry ${i}: reserved bits are set`);
      const l2Offset = (hi & 0x00ffffff) * 2 ** 32 + (lo >>> 0);
      if (l2Offset === 0) continue; // the whole range is unallocated: a hole
      if (l2Offset % cluster !== 0)
        throw file.error(`corrupt qcow2 L1 entry ${i}: L2 table offset ${l2Offset} is not cluster-aligned`);
      const l2 = await file.read(l2Offset, cluster, `qcow2 L2 table ${i}`);
      for (let j = 0; j < l2Entries; j++) {
        const guest = i * l2Span + j * cluster;
        if (guest >= virtualSize) break;
        const length = Math.min(cluster, virtualSize - guest);
        const ehi = l2.readUInt32BE(j * 8);
        const elo = l2.readUInt32BE(j * 8 + 4);
        if (ehi & 0x40000000) {
          const run = gather.take();
          if (run) yield* readRun(file, run, MAX_CHUNK, 'qcow2 data cluster');
          yield { offset: guest, length, data: await compressedCluster(file, l2, j, clusterBits, length) };
          continue;
        }
        if ((ehi & 0x3f000000) !== 0 || (elo & 0x1fe) !== 0)
          throw file.error(`corrupt qcow2 L2 table ${i}, entry ${j}: reserved bits are set`);
        const host = (ehi & 0x00ffffff) * 2 ** 32 + ((elo & 0xfffffe00) >>> 0);
        if (host === 0 || elo & 1) continue; // unallocated or a zero cluster: a hole
        if (host % cluster !== 0)
          throw file.error(
            `corrupt qcow2 L2 table ${i}, entry ${j}: cluster offset ${host} is not cluster-aligned`,
          );
        file.check(host, length, `qcow2 data cluster for guest offset ${guest}`);
        const run = gather.add(guest, host, length);
        if (run) yield* readRun(file, run, MAX_CHUNK, 'qcow2 data cluster');
      }
    }
    const run = gather.take();
    if (run) yield* readRun(file, run, MAX_CHUNK, 'qcow2 data cluster');
  };

  return {
    path: file.path,
    format: 'qcow2',
    virtualSize,
    extents: () => normalized(extents(), virtualSize),
    close: () => file.close(),
  };
}

/** Refuses header extensions that change how the data is found (external data file, encryption). */
async function checkExtensions(file: ImageFile, start: number, end: number): Promise<void> {
  const area = await file.readUpTo(0, end);
  for (let at = start; at + 8 <= area.length;) {
    const type = area.readUInt32BE(at);
    const length = area.readUInt32BE(at + 4);
    if (type === EXT_END) return;
    if (type === EXT_DATA_FILE)
      throw file.error('the qcow2 image names an external data file, which is not supported', HINT);
    if (type === EXT_ENCRYPTION)
      throw file.error('the qcow2 image is encrypted; amibundle cannot read encrypted qcow2', HINT);
    at += 8 + Math.ceil(length / 8) * 8;
  }
}

/** The compressed cluster L2 entry `j` describes, inflated (raw deflate, as QEMU writes it). */
async function compressedCluster(
  file: ImageFile,
  l2: Buffer,
  j: number,
  clusterBits: number,
  length: number,
): Promise<Buffer> {
  const entry = l2.readBigUInt64BE(j * 8);
  const shift = BigInt(62 - (clusterBits - 8));
  const offset = Number(entry & ((1n << shift) - 1n));
  const sectors = Number((entry >> shift) & ((1n << BigInt(clusterBits - 8)) - 1n)) + 1;
  // The stream may end in the file's last, partly written sector: read what is there.
  const wanted = sectors * 512 - (offset % 512);
  if (offset >= file.size)
    throw file.error(
      `truncated or corrupt: the compressed qcow2 cluster at ${offset} lies past the end of the file (${file.size} bytes)`,
    );
  const compressed = await file.read(
    offset,
    Math.min(wanted, file.size - offset),
    'compressed qcow2 cluster',
  );
  const cluster = 2 ** clusterBits;
  const out = inflateCapped(file, compressed, 'raw', length, cluster, 'compressed qcow2 cluster');
  return out.subarray(0, length);
}
