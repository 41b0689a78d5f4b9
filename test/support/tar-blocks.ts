// Raw tar building blocks for hostile-stream tests: headers of any type with a correct checksum,
// PAX records, sparse extension blocks. What our writer never produces, tests still need to feed.
import { BLOCK, endOfArchiveLength, memberHeaderBlocks } from '../../src/format/tar-header.js';
import { writeTarNumber } from '../../src/format/tar-number.js';

/** Recomputes the checksum of a 512-byte header in place. */
export function fixChecksum(h: Buffer): Buffer {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** A header block of `type` whose size field says `size`. */
export function rawHeader(type: string, size: number, name = 'meta'): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 'latin1');
  writeTarNumber(h, 100, 8, 0o644);
  writeTarNumber(h, 124, 12, size);
  writeTarNumber(h, 136, 12, 0);
  h.write(type, 156, 1, 'latin1');
  h.write('ustar  \0', 257, 'latin1');
  return fixChecksum(h);
}

/** `data` padded with zeros to whole blocks. */
export function padded(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}

/** A PAX header record set (type `x` unless given) with its header block. */
export function paxRecord(body: Buffer | string, type = 'x'): Buffer {
  const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return Buffer.concat([rawHeader(type, data.length, 'PaxHeader'), padded(data)]);
}

/** One PAX record with its correct length prefix. */
export function paxLine(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len++;
  return `${len}${body}`;
}

/** A plain file member of `size` bytes of `fill`, padded, then the end of archive. */
export function plainMember(name: string, size: number, fill = 0x61): Buffer {
  const header = memberHeaderBlocks({ name, mode: 0o644, mtime: 1, size });
  const data = padded(Buffer.alloc(size, fill));
  return Buffer.concat([header, data]);
}

/** `body` followed by the end-of-archive marker padded to a record, as GNU tar writes it. */
export function ended(body: Buffer): Buffer {
  return Buffer.concat([body, Buffer.alloc(endOfArchiveLength(body.length))]);
}
