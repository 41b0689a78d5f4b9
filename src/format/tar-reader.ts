// Incremental reader for the tar stream inside a bundle: exactly one regular file member (plain,
// GNU old-sparse `S`, optionally behind a GNU long name or a PAX header), then the end-of-archive
// blocks and zero padding. Anything else is refused: a bundle is not a place for links, devices,
// directories, paths or a second file. Pure: data is handed to callbacks, which do the I/O.
import { BundleError } from '../errors.js';
import { BLOCK } from './tar-header.js';
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
const MAX_PAX = 65536;

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

export class TarMemberReader {
  private state: State = 'header';
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private need = BLOCK;
  private longName: string | undefined;
  private paxPath: string | undefined;
  private paxSize: number | undefined;
  private headerBlock: Buffer | undefined;
  private sparseEntries: SparseEntry[] = [];
  private stored = 0;
  private seenMember = false;
  private member: TarMember | undefined;
  /** Data cursor: remaining stored bytes, and position inside the sparse map. */
  private remaining = 0;
  private extentIndex = 0;
  private extentDone = 0;
  private zeroBlocksSeen = 0;
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
        return;
      }
      const take = Math.min(this.need - this.pendingLength, chunk.length - at);
      this.pending.push(chunk.subarray(at, at + take));
      this.pendingLength += take;
      at += take;
      if (this.pendingLength === this.need) {
        const unit = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
        this.pending = [];
        this.pendingLength = 0;
        await this.consume(unit);
      }
    }
    // A unit still incomplete must outlive this chunk: the caller may reuse its memory once we return.
    if (this.pending.length > 0) this.pending = [Buffer.concat(this.pending)];
  }

  /** The stream ended: it must have ended after the member and the end-of-archive marker. */
  finish(): TarMember {
    if (!this.member) throw new BundleError('the tar stream holds no file (truncated bundle?)');
    if (this.state !== 'trailer' || this.zeroBlocksSeen < 2)
      throw new BundleError('the tar stream is truncated (no end-of-archive marker)');
    return this.member;
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
        this.state = 'header';
        this.need = BLOCK;
        return;
      default:
        return;
    }
  }

  private resetHeader(): void {
    this.state = 'header';
    this.need = BLOCK;
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
      this.state = 'longname';
      this.need = Math.ceil(size / BLOCK) * BLOCK || BLOCK;
      return;
    }
    if (type === 'x' || type === 'g') {
      if (size > MAX_PAX) throw new BundleError(`tar PAX header of ${size} bytes is too long`);
      if (size === 0) return;
      this.state = 'pax';
      this.need = Math.ceil(size / BLOCK) * BLOCK;
      this.paxSizeField = size;
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
      for (let i = 0; i < 4; i++) this.addSparseEntry(block, 386 + i * 24);
      if (block[482] === 1) {
        this.state = 'extension';
        this.need = BLOCK;
        return;
      }
    }
    await this.startData(type === 'S');
  }

  private paxSizeField = 0;
  private paxGlobal = false;

  private parsePax(unit: Buffer): void {
    const text = unit.subarray(0, this.paxSizeField).toString('utf8');
    let at = 0;
    while (at < text.length) {
      const space = text.indexOf(' ', at);
      const len = space > at ? parseInt(text.slice(at, space), 10) : NaN;
      if (!Number.isFinite(len) || len <= 0) throw new BundleError('corrupt tar PAX header');
      const record = text.slice(space + 1, at + len - 1);
      at += len;
      const eq = record.indexOf('=');
      const key = record.slice(0, eq);
      const value = record.slice(eq + 1);
      if (this.paxGlobal) continue;
      if (key.startsWith('GNU.sparse.'))
        throw new BundleError(
          'the tar member uses PAX sparse format, which bundles do not use; re-bundle the image',
        );
      if (key === 'path') this.paxPath = value;
      else if (key === 'size') {
        if (!/^\d+$/.test(value)) throw new BundleError('corrupt tar PAX size');
        this.paxSize = Number(value);
      }
    }
  }

  private addSparseEntry(block: Buffer, at: number): void {
    if (block[at] === 0) return;
    const offset = readTarNumber(block, at, 12);
    const length = readTarNumber(block, at + 12, 12);
    if (offset === undefined || length === undefined) throw new BundleError('corrupt tar sparse map');
    this.sparseEntries.push({ offset, length });
  }

  private async onExtension(block: Buffer): Promise<void> {
    for (let i = 0; i < 21; i++) this.addSparseEntry(block, i * 24);
    if (this.sparseEntries.length > 1_000_000) throw new BundleError('tar sparse map is absurdly long');
    if (block[504] === 1) return;
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
      let end = 0;
      let total = 0;
      for (const e of this.sparseEntries) {
        if (e.offset < end || e.offset + e.length > realSize)
          throw new BundleError('tar sparse map is out of order or beyond the file size');
        end = e.offset + e.length;
        total += e.length;
      }
      if (total !== this.stored)
        throw new BundleError(`tar sparse map covers ${total} bytes but the member stores ${this.stored}`);
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
    this.need = pad;
  }
}
