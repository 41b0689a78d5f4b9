import { describe, expect, it } from 'vitest';
import { endOfArchiveLength, memberHeaderBlocks } from '../../src/format/tar-header.js';
import { readTarNumber, writeTarNumber } from '../../src/format/tar-number.js';
import { TarMemberReader, type TarMember } from '../../src/format/tar-reader.js';
import { bundledCases } from '../support/fixtures.js';

describe('tar headers match GNU tar 1.34 byte for byte (fixture headers)', () => {
  for (const c of bundledCases()) {
    it(c.case, () => {
      const map = c.image.data_map_at_bundle_time.map(([offset, length]) => ({ offset, length }));
      const headerHex = c.expected!.tar.members[0]!.header_blocks_hex.join('');
      const sparse = headerHex.slice(156 * 2, 157 * 2) === '53';
      const bytes = memberHeaderBlocks({
        name: c.expected!.name,
        mode: parseInt(c.image.mode, 8),
        mtime: c.image.mtime,
        size: c.image.size,
        ...(sparse ? { sparseMap: map } : {}),
      });
      expect(bytes.toString('hex')).toBe(headerHex);
    });
  }
});

describe('tar numbers', () => {
  it('octal below 8 GiB, base-256 from 8 GiB on', () => {
    const b = Buffer.alloc(12);
    writeTarNumber(b, 0, 12, 8 * 1024 ** 3 - 1);
    expect(b.toString('latin1')).toBe('77777777777\0');
    writeTarNumber(b, 0, 12, 8 * 1024 ** 3);
    expect(b.toString('hex')).toBe('800000000000000200000000');
    expect(readTarNumber(b, 0, 12)).toBe(8 * 1024 ** 3);
    writeTarNumber(b, 0, 12, 9 * 1024 ** 3 + 5);
    expect(readTarNumber(b, 0, 12)).toBe(9 * 1024 ** 3 + 5);
  });
  it('end of archive pads to a 10240-byte record', () => {
    expect(endOfArchiveLength(512 + 512)).toBe(10240 - 1024);
    expect(endOfArchiveLength(9216)).toBe(1024);
    expect(endOfArchiveLength(9728)).toBe(1024 + 9728);
  });
});

async function readAll(stream: Buffer): Promise<{ member: TarMember; data: Map<number, Buffer> }> {
  const data = new Map<number, Buffer>();
  let member: TarMember | undefined;
  const reader = new TarMemberReader({
    member: (m) => {
      member = m;
    },
    data: (offset, chunk) => {
      data.set(offset, Buffer.from(chunk));
    },
  });
  for (let i = 0; i < stream.length; i += 777) await reader.write(stream.subarray(i, i + 777));
  reader.finish();
  return { member: member!, data };
}

describe('tar reader reads what the writer writes', () => {
  for (const extents of [0, 1, 4, 5, 25, 500]) {
    it(`sparse map with ${extents} extents`, async () => {
      const map = Array.from({ length: extents }, (_, i) => ({
        offset: i * 8192 + 4096,
        length: 4096 - (i % 3),
      }));
      const size = extents * 8192 + 4096;
      const header = memberHeaderBlocks({ name: 'img', mode: 0o644, mtime: 1, size, sparseMap: map });
      const stored = map.reduce((s, e) => s + e.length, 0);
      const body = Buffer.alloc(stored, 7);
      const pad = (512 - (stored % 512)) % 512;
      const before = header.length + stored + pad;
      const stream = Buffer.concat([
        header,
        body,
        Buffer.alloc(pad),
        Buffer.alloc(endOfArchiveLength(before)),
      ]);
      const { member, data } = await readAll(stream);
      expect(member.size).toBe(size);
      expect(member.sparseMap).toEqual(map);
      const written = [...data.values()].reduce((s, b) => s + b.length, 0);
      expect(written).toBe(stored);
    });
  }

  it('base-256 sizes over 8 GiB in a sparse map', async () => {
    const size = 9 * 1024 ** 3;
    const map = [{ offset: size - 1024 * 1024, length: 1024 * 1024 }];
    const header = memberHeaderBlocks({ name: 'big', mode: 0o600, mtime: 2, size, sparseMap: map });
    expect(header[483]).toBe(0x80);
    const body = Buffer.alloc(1024 * 1024, 1);
    const stream = Buffer.concat([
      header,
      body,
      Buffer.alloc(endOfArchiveLength(header.length + body.length)),
    ]);
    const { member, data } = await readAll(stream);
    expect(member.size).toBe(size);
    expect(member.mode).toBe(0o600);
    expect([...data.keys()][0]).toBe(size - 1024 * 1024);
  });

  it('GNU long names over 100 bytes', async () => {
    const name = 'n'.repeat(150);
    const header = memberHeaderBlocks({ name, mode: 0o644, mtime: 3, size: 1 });
    const stream = Buffer.concat([
      header,
      Buffer.from('x'),
      Buffer.alloc(511),
      Buffer.alloc(endOfArchiveLength(header.length + 512)),
    ]);
    const { member } = await readAll(stream);
    expect(member.name).toBe(name);
  });
});
