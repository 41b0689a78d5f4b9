// Tar header blocks in GNU tar 1.34's default `gnu` format, byte for byte: a regular member,
// an old-GNU sparse member (`S`, map in the header plus extension blocks) and `././@LongLink`
// records for names over 100 bytes. Pure functions: no I/O.
import { writeTarNumber } from './tar-number.js';

export const BLOCK = 512;
/** GNU tar's default record size: archives are padded with zeros to a multiple of it. */
export const RECORD = 10240;
const SPARSE_IN_HEADER = 4;
const SPARSE_PER_EXTENSION = 21;

export interface SparseEntry {
  readonly offset: number;
  readonly length: number;
}

export interface MemberInfo {
  /** Member name (the bundle name); UTF-8 bytes. */
  readonly name: string;
  /** Permission bits (st_mode & 07777). */
  readonly mode: number;
  /** Modification time, whole seconds since the epoch. */
  readonly mtime: number;
  /** Apparent size of the file. */
  readonly size: number;
  /**
   * Data extents when the member is written as a GNU sparse member; undefined for a plain
   * member. GNU tar's map: every data extent, then a final (size, 0) entry — this function
   * appends that entry itself.
   */
  readonly sparseMap?: readonly SparseEntry[];
}

/** Offsets of the fields we write (POSIX ustar plus the old GNU extension area). */
const F = {
  name: 0,
  mode: 100,
  uid: 108,
  gid: 116,
  size: 124,
  mtime: 136,
  chksum: 148,
  typeflag: 156,
  magic: 257,
  uname: 265,
  gname: 297,
  sparse: 386,
  isExtended: 482,
  realSize: 483,
} as const;

function setChecksum(block: Buffer): void {
  block.fill(0x20, F.chksum, F.chksum + 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  // GNU writes six octal digits, a NUL, then the space that was summed.
  block.write(sum.toString(8).padStart(6, '0'), F.chksum, 6, 'latin1');
  block[F.chksum + 6] = 0;
  block[F.chksum + 7] = 0x20;
}

function baseHeader(nameBytes: Buffer, typeflag: string, size: number, mode: number, mtime: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  nameBytes.copy(block, F.name, 0, Math.min(nameBytes.length, 100));
  writeTarNumber(block, F.mode, 8, mode);
  writeTarNumber(block, F.uid, 8, 0);
  writeTarNumber(block, F.gid, 8, 0);
  writeTarNumber(block, F.size, 12, size);
  writeTarNumber(block, F.mtime, 12, mtime);
  block.write(typeflag, F.typeflag, 1, 'latin1');
  block.write('ustar  \0', F.magic, 8, 'latin1');
  block.write('root', F.uname, 'latin1');
  block.write('root', F.gname, 'latin1');
  return block;
}

/** GNU `././@LongLink` record (header + name data) for a name longer than 100 bytes. */
function longNameRecord(nameBytes: Buffer): Buffer[] {
  const data = Buffer.concat([nameBytes, Buffer.alloc(1)]);
  // GNU tar 1.34: mode 0644, uid/gid 0, mtime 0, owner names root.
  const header = baseHeader(Buffer.from('././@LongLink', 'latin1'), 'L', data.length, 0o644, 0);
  setChecksum(header);
  const padded = Buffer.alloc(Math.ceil(data.length / BLOCK) * BLOCK);
  data.copy(padded);
  return [header, padded];
}

function writeSparseEntry(block: Buffer, at: number, entry: SparseEntry): void {
  writeTarNumber(block, at, 12, entry.offset);
  writeTarNumber(block, at + 12, 12, entry.length);
}

/** Bytes of member data the archive holds: the sum of the extents for a sparse member. */
export function storedSize(member: MemberInfo): number {
  if (!member.sparseMap) return member.size;
  return member.sparseMap.reduce((sum, e) => sum + e.length, 0);
}

/**
 * All header blocks that precede the member's data: optional long-name record, the member
 * header, and sparse extension blocks.
 */
export function memberHeaderBlocks(member: MemberInfo): Buffer {
  const nameBytes = Buffer.from(member.name, 'utf8');
  const blocks: Buffer[] = [];
  if (nameBytes.length > 100) blocks.push(...longNameRecord(nameBytes));
  const sparse = member.sparseMap;
  const header = baseHeader(
    nameBytes,
    sparse ? 'S' : '0',
    storedSize(member),
    member.mode & 0o7777,
    member.mtime,
  );
  if (!sparse) {
    setChecksum(header);
    blocks.push(header);
    return Buffer.concat(blocks);
  }
  const entries: SparseEntry[] = [...sparse, { offset: member.size, length: 0 }];
  const inHeader = entries.slice(0, SPARSE_IN_HEADER);
  inHeader.forEach((e, i) => writeSparseEntry(header, F.sparse + i * 24, e));
  writeTarNumber(header, F.realSize, 12, member.size);
  const extensions: Buffer[] = [];
  for (let i = SPARSE_IN_HEADER; i < entries.length; i += SPARSE_PER_EXTENSION) {
    const ext = Buffer.alloc(BLOCK);
    entries.slice(i, i + SPARSE_PER_EXTENSION).forEach((e, j) => writeSparseEntry(ext, j * 24, e));
    if (i + SPARSE_PER_EXTENSION < entries.length) ext[504] = 1;
    extensions.push(ext);
  }
  if (extensions.length > 0) header[F.isExtended] = 1;
  setChecksum(header);
  blocks.push(header, ...extensions);
  return Buffer.concat(blocks);
}

/** Zero padding after `dataLength` bytes of member data, up to the next 512-byte block. */
export function dataPadding(dataLength: number): number {
  return (BLOCK - (dataLength % BLOCK)) % BLOCK;
}

/**
 * End of archive: two zero blocks, then zeros up to a multiple of the 10240-byte record, given
 * how many bytes were written before it.
 */
export function endOfArchiveLength(bytesBefore: number): number {
  const withEnd = bytesBefore + 2 * BLOCK;
  return withEnd + ((RECORD - (withEnd % RECORD)) % RECORD) - bytesBefore;
}
