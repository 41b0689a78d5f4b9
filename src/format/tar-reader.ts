// Incremental reader for the tar stream inside a bundle: exactly one regular file member (plain,
// GNU old-sparse `S`, optionally behind a GNU long name or a PAX header), then the end-of-archive
// blocks and zero padding. Anything else is refused: a bundle is not a place for links, devices,
// directories, paths or a second file. Pure: data is handed to callbacks, which do the I/O.
import { BundleError } from '../errors.js';
import { BLOCK, RECORD } from './tar-header.js';
import type { SparseEntry } from './tar-header.js';
import { readTarNumber } from './tar-number.js';

export interface TarMember {
  readonly name: string;
  readonly mode: number;
  readonly mtime: number;
  /** Apparent size of the file. */
  readonly size: number;
  /** Data extents for a sparse member (zero-length entries dropped); undefined when plain. */
  readonly sparseMap?: readonly SparseEntry[];
}

export interface TarMemberHandler {
  /** Called once, before any data, with the validated member. */
  member(info: TarMember): void | Promise<void>;
  /** Member data at `offset` of the file. Chunks arrive in ascending offset order. */
  data(offset: number, chunk: Buffer): void | Promise<void>;
}

const MAX_LONG_NAME = 4096;
/**
 * Metadata records (PAX headers, GNU long names) allowed before the member, headers and padded
 * data together: a real bundle has at most one long name or one short PAX record, so anything
 * beyond this is only there to make the reader work.
 */
export const MAX_METADATA_BYTES = 64 * 1024;
/** Sparse map entries allowed; 24 bytes each in the archive (a map of ~23 MiB at most). */
export const MAX_SPARSE_ENTRIES = 1_000_000;
const SPARSE_IN_HEADER = 4;
const SPARSE_PER_EXTENSION = 21;
/** Extension blocks needed for the largest map allowed (4 entries live in the member header). */
export const MAX_SPARSE_EXTENSIONS = Math.ceil(
  (MAX_SPARSE_ENTRIES - SPARSE_IN_HEADER) / SPARSE_PER_EXTENSION,
);
/** Zeros accepted after the two-block end marker: GNU tar pads to one 10240-byte record at most. */
export const MAX_TRAILING_ZEROS = RECORD;

type State = 'header' | 'longname' | 'pax' | 'extension' | 'data' | 'padding' | 'trailer';

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function cString(b: Buffer, start: number, end: number): Buffer {
  const nul = b.indexOf(0, start);
  return b.subarray(start, nul >= 0 && nul < end ? nul : end);
}

function checksumOk(block: Buffer): boolean {
  const stored = readTarNumber(block, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return stored === unsigned || stored === signed;
}

/** Refuses names that could write anywhere but the one file in the destination. */
export function checkMemberName(name: string): string {
  const plain = name.startsWith('./') ? name.slice(2) : name;
  if (plain === '' || plain === '.' || plain === '..')
    throw new BundleError(`tar member name '${name}' is not a file name`);
  if (plain.includes('/') || plain.includes('\\'))
    throw new BundleError(`tar member '${name}' has a path; a bundle holds one file with a plain name`);
  if (/[\0-\x1f\x7f]/.test(plain)) throw new BundleError(`tar member name contains control characters`);
  return plain;
}

const typeNames: Record<string, string> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '5': 'a directory',
  '6': 'a fifo',
  K: 'a long link name',
  M: 'a multi-volume continuation',
  N: 'an old GNU long name',
  V: 'a volume label',
  D: 'a GNU dump directory',
};

/**
 * The most tar stream a bundle whose manifest declares an image of `imageSize` bytes can hold, so
 * that the decompressed stream can be cut off as soon as it passes it (a part that inflates to
 * far more is refused early, not after inflating everything):
 *
 *   MAX_METADATA_BYTES                      PAX / long-name records before the member
 *   + 512                                   the member header
 *   + 512 × ⌈(min(MAX_SPARSE_ENTRIES, S + 1) − 4) / 21⌉   sparse extension blocks: every entry but
 *                                           a zero-length last one stores ≥ 1 byte, 4 sit in the header
 *   + S                                     member data (never more than the apparent size)
 *   + 511                                   padding of the data to a block
 *   + 1024                                  the end-of-archive marker
 *   + MAX_TRAILING_ZEROS                    at most one record of zeros after it
 */
export function maxTarStreamBytes(imageSize: number): number {
  const entries = Math.min(MAX_SPARSE_ENTRIES, imageSize + 1);
  const extensions = Math.ceil(Math.max(0, entries - SPARSE_IN_HEADER) / SPARSE_PER_EXTENSION);
  return (
    MAX_METADATA_BYTES + BLOCK + BLOCK * extensions + imageSize + (BLOCK - 1) + 2 * BLOCK + MAX_TRAILING_ZEROS
  );
}

/** Decimal digits of a PAX record length: at most 5, as no record may exceed MAX_METADATA_BYTES. */
const MAX_PAX_LENGTH_DIGITS = 5;

export class TarMemberReader {
  private state: State = 'header';
  /** The unit (header block, metadata record, padding) being collected, in memory of our own. */
  private unit: Buffer = Buffer.alloc(BLOCK);
  private unitFill = 0;
  private need = BLOCK;
  private longName: string | undefined;
  private paxPath: string | undefined;
  private paxSize: number | undefined;
  /** Length of the PAX data inside the current unit (the unit is padded to whole blocks). */
  private paxLength = 0;
  private paxGlobal = false;
  /** Header blocks and padded data of metadata records seen so far. */
  private metadataBytes = 0;
  private headerBlock: Buffer | undefined;
  private sparseEntries: SparseEntry[] = [];
  private sparseTotal = 0;
  private sparseEnd = 0;
  private extensionBlocks = 0;
  private stored = 0;
  private seenMember = false;
  private member: TarMember | undefined;
  /** Data cursor: remaining stored bytes, and position inside the sparse map. */
  private remaining = 0;
  private extentIndex = 0;
  private extentDone = 0;
  private zeroBlocksSeen = 0;
  private trailingZeros = 0;
  private bytesIn = 0;

  constructor(private readonly handler: TarMemberHandler) {}

  /** Total bytes of tar stream consumed so far. */
  get position(): number {
    return this.bytesIn;
  }

  async write(chunk: Buffer): Promise<void> {
    this.bytesIn += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      if (this.state === 'data') {
        const take = Math.min(this.remaining, chunk.length - at);
        await this.emitData(chunk.subarray(at, at + take));
        at += take;
        this.remaining -= take;
        if (this.remaining === 0) this.enterPadding();
        continue;
      }
      if (this.state === 'trailer') {
        for (let i = at; i < chunk.length; i++)
          if (chunk[i] !== 0)
            throw new BundleError(
              'unexpected data after the end of the tar archive; the bundle was tampered with',
            );
        this.trailingZeros += chunk.length - at;
        if (this.trailingZeros > MAX_TRAILING_ZEROS)
          throw new BundleError(
            `more than ${MAX_TRAILING_ZEROS} bytes of zeros after the end of the tar archive; the bundle was tampered with`,
          );
        return;
      }
      // Copied, never kept as a view: the caller may reuse the chunk's memory once we return.
      const take = Math.min(this.need - this.unitFill, chunk.length - at);
      chunk.copy(this.unit, this.unitFill, at, at + take);
      this.unitFill += take;
      at += take;
      if (this.unitFill === this.need) {
        const unit = this.unit.subarray(0, this.need);
        // A fresh buffer per unit: a header block is kept until its sparse extensions are read.
        this.setNeed(BLOCK);
        await this.consume(unit);
      }
    }
  }

  /** The stream ended: it must have ended after the member and the end-of-archive marker. */
  finish(): TarMember {
    if (!this.member) throw new BundleError('the tar stream holds no file (truncated bundle?)');
    if (this.state !== 'trailer' || this.zeroBlocksSeen < 2)
      throw new BundleError('the tar stream is truncated (no end-of-archive marker)');
    return this.member;
  }

  /** Starts collecting a unit of `n` bytes into a new buffer. */
  private setNeed(n: number): void {
    this.need = n;
    this.unit = Buffer.alloc(n);
    this.unitFill = 0;
  }

  private async consume(unit: Buffer): Promise<void> {
    switch (this.state) {
      case 'header':
        return this.onHeader(unit);
      case 'longname':
        this.longName = cString(unit, 0, unit.length).toString('utf8');
        return this.resetHeader();
      case 'pax':
        this.parsePax(unit);
        return this.resetHeader();
      case 'extension':
        return this.onExtension(unit);
      case 'padding':
        return this.resetHeader();
      default:
        return;
    }
  }

  private resetHeader(): void {
    this.state = 'header';
    this.setNeed(BLOCK);
  }

  /** Counts a metadata record (header block plus padded data) against MAX_METADATA_BYTES. */
  private countMetadata(size: number): number {
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    this.metadataBytes += BLOCK + padded;
    if (this.metadataBytes > MAX_METADATA_BYTES)
      throw new BundleError(
        `the tar stream holds more than ${MAX_METADATA_BYTES} bytes of PAX/long-name headers; a bundle needs at most one`,
      );
    return padded;
  }

  private async onHeader(block: Buffer): Promise<void> {
    if (isZeroBlock(block)) {
      if (!this.seenMember) throw new BundleError('the tar stream holds no file (starts with an end marker)');
      this.zeroBlocksSeen++;
      if (this.zeroBlocksSeen >= 2) this.state = 'trailer';
      return;
    }
    if (this.zeroBlocksSeen > 0)
      throw new BundleError('unexpected data after the end of the tar archive; the bundle was tampered with');
    if (!checksumOk(block)) throw new BundleError('corrupt tar header (bad checksum)');
    const type = String.fromCharCode(block[156]!);
    const size = readTarNumber(block, 124, 12);
    if (size === undefined) throw new BundleError('corrupt tar header (bad size field)');
    if (type === 'L') {
      if (size > MAX_LONG_NAME) throw new BundleError(`tar long name of ${size} bytes is too long`);
      const padded = this.countMetadata(size);
      if (padded === 0) return;
      this.state = 'longname';
      this.setNeed(padded);
      return;
    }
    if (type === 'x' || type === 'g') {
      if (size > MAX_METADATA_BYTES) throw new BundleError(`tar PAX header of ${size} bytes is too long`);
      const padded = this.countMetadata(size);
      if (padded === 0) return;
      this.state = 'pax';
      this.setNeed(padded);
      this.paxLength = size;
      this.paxGlobal = type === 'g';
      return;
    }
    if (type !== '0' && type !== '\0' && type !== '7' && type !== 'S') {
      const what = typeNames[type] ?? `an unsupported entry (type '${type}')`;
      throw new BundleError(`the tar stream holds ${what}; a bundle must hold exactly one regular file`);
    }
    if (this.seenMember)
      throw new BundleError('the tar stream holds more than one file; a bundle holds exactly one');
    this.seenMember = true;
    this.headerBlock = block;
    this.stored = this.paxSize ?? size;
    if (type === 'S') {
      const found = this.addSparseEntries(block, 386, SPARSE_IN_HEADER);
      if (block[482] === 1) {
        if (found < SPARSE_IN_HEADER)
          throw new BundleError('corrupt tar sparse header (map continues after an empty entry)');
        this.state = 'extension';
        return;
      }
    }
    await this.startData(type === 'S');
  }

  /**
   * PAX records: `LENGTH SP KEY=VALUE LF`, LENGTH the record's own length in decimal bytes. Read
   * by index over the bytes in one pass, strictly: digits only, and LF exactly where the length
   * says, so no record is re-scanned and no junk passes as a length.
   */
  private parsePax(unit: Buffer): void {
    const end = this.paxLength;
    const corrupt = (what: string): BundleError => new BundleError(`corrupt tar PAX header (${what})`);
    let at = 0;
    while (at < end) {
      let len = 0;
      let i = at;
      for (; i < end && unit[i] !== 0x20; i++) {
        const d = unit[i]! - 0x30;
        if (d < 0 || d > 9 || i - at >= MAX_PAX_LENGTH_DIGITS || (d === 0 && i === at))
          throw corrupt('record length is not a decimal number');
        len = len * 10 + d;
      }
      if (i === at || i >= end) throw corrupt('record length is not a decimal number');
      const recordEnd = at + len; // one past the LF
      if (recordEnd > end || recordEnd <= i + 1) throw corrupt('record length runs past the header');
      if (unit[recordEnd - 1] !== 0x0a) throw corrupt('record does not end where its length says');
      const eq = unit.indexOf(0x3d, i + 1);
      if (eq < 0 || eq >= recordEnd - 1 || eq === i + 1) throw corrupt('record is not KEY=VALUE');
      const key = unit.toString('utf8', i + 1, eq);
      const value = unit.toString('utf8', eq + 1, recordEnd - 1);
      at = recordEnd;
      if (this.paxGlobal) continue;
      if (key.startsWith('GNU.sparse.'))
        throw new BundleError(
          'the tar member uses PAX sparse format, which bundles do not use; re-bundle the image',
        );
      if (key === 'path') this.paxPath = value;
      else if (key === 'size') {
        if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value)))
          throw new BundleError('corrupt tar PAX size');
        this.paxSize = Number(value);
      }
    }
  }

  /**
   * Adds the `count` map entries at `at`; returns how many were present. Entries must be in order
   * and within the member's stored size, checked as they arrive so a hostile map fails early.
   */
  private addSparseEntries(block: Buffer, at: number, count: number): number {
    let found = 0;
    for (let i = 0; i < count; i++) {
      const p = at + i * 24;
      if (block[p] === 0) {
        found = i;
        for (let j = p; j < at + count * 24; j++)
          if (block[j] !== 0) throw new BundleError('corrupt tar sparse map (an entry after an empty one)');
        return found;
      }
      const offset = readTarNumber(block, p, 12);
      const length = readTarNumber(block, p + 12, 12);
      if (offset === undefined || length === undefined) throw new BundleError('corrupt tar sparse map');
      if (offset < this.sparseEnd) throw new BundleError('tar sparse map is out of order');
      // GNU tar writes a zero-length entry only as the map's last, so entries ≤ stored bytes + 1.
      if (this.sparseEntries.length > 0 && this.sparseEntries[this.sparseEntries.length - 1]!.length === 0)
        throw new BundleError('corrupt tar sparse map (an entry after the zero-length last one)');
      this.sparseEnd = offset + length;
      this.sparseTotal += length;
      if (this.sparseTotal > this.stored)
        throw new BundleError(`tar sparse map covers more than the ${this.stored} bytes the member stores`);
      if (this.sparseEntries.length >= MAX_SPARSE_ENTRIES)
        throw new BundleError(`tar sparse map has more than ${MAX_SPARSE_ENTRIES} entries`);
      this.sparseEntries.push({ offset, length });
      found = i + 1;
    }
    return found;
  }

  private async onExtension(block: Buffer): Promise<void> {
    // Every block counts, whatever it holds: a map cannot grow without reaching the cap.
    if (++this.extensionBlocks > MAX_SPARSE_EXTENSIONS)
      throw new BundleError(`tar sparse map has more than ${MAX_SPARSE_EXTENSIONS} extension blocks`);
    const found = this.addSparseEntries(block, 0, SPARSE_PER_EXTENSION);
    if (block[504] === 1) {
      if (found < SPARSE_PER_EXTENSION)
        throw new BundleError('corrupt tar sparse map (map continues after an empty entry)');
      return;
    }
    await this.startData(true);
  }

  private async startData(sparse: boolean): Promise<void> {
    const block = this.headerBlock!;
    const rawName = this.paxPath ?? this.longName ?? cString(block, 0, 100).toString('utf8');
    const name = checkMemberName(rawName);
    const mode = readTarNumber(block, 100, 8) ?? 0o644;
    const mtime = readTarNumber(block, 136, 12) ?? 0;
    let size = this.stored;
    let sparseMap: SparseEntry[] | undefined;
    if (sparse) {
      const realSize = readTarNumber(block, 483, 12);
      if (realSize === undefined) throw new BundleError('corrupt tar sparse header (bad real size)');
      size = realSize;
      if (this.sparseEnd > realSize) throw new BundleError('tar sparse map goes beyond the file size');
      if (this.sparseTotal !== this.stored)
        throw new BundleError(
          `tar sparse map covers ${this.sparseTotal} bytes but the member stores ${this.stored}`,
        );
      sparseMap = this.sparseEntries.filter((e) => e.length > 0);
    }
    this.member = { name, mode: mode & 0o7777, mtime, size, ...(sparseMap ? { sparseMap } : {}) };
    await this.handler.member(this.member);
    this.remaining = this.stored;
    this.extentIndex = 0;
    this.extentDone = 0;
    if (this.remaining === 0) this.enterPadding();
    else this.state = 'data';
  }

  private async emitData(chunk: Buffer): Promise<void> {
    const map = this.member!.sparseMap;
    if (!map) {
      await this.handler.data(this.stored - this.remaining, chunk);
      return;
    }
    let at = 0;
    while (at < chunk.length) {
      const extent = map[this.extentIndex]!;
      const take = Math.min(extent.length - this.extentDone, chunk.length - at);
      await this.handler.data(extent.offset + this.extentDone, chunk.subarray(at, at + take));
      at += take;
      this.extentDone += take;
      if (this.extentDone === extent.length) {
        this.extentIndex++;
        this.extentDone = 0;
      }
    }
  }

  private enterPadding(): void {
    const pad = (BLOCK - (this.stored % BLOCK)) % BLOCK;
    if (pad === 0) {
      this.resetHeader();
      return;
    }
    this.state = 'padding';
    this.setNeed(pad);
  }
}
