// The tar reader's work is bounded by what a bundle can legitimately hold: strict PAX lengths,
// a cap on metadata before the member, counted sparse extension blocks, and at most one record
// of zeros after the end marker. Each stream here was accepted (some slowly) before the bounds.
import { describe, expect, it } from 'vitest';
import { BundleError } from '../../src/errors.js';
import { BLOCK, memberHeaderBlocks } from '../../src/format/tar-header.js';
import { writeTarNumber } from '../../src/format/tar-number.js';
import {
  MAX_METADATA_BYTES,
  MAX_SPARSE_EXTENSIONS,
  MAX_TRAILING_ZEROS,
  TarMemberReader,
  type TarMember,
} from '../../src/format/tar-reader.js';
import {
  ended,
  fixChecksum,
  padded,
  paxLine,
  paxRecord,
  plainMember,
  rawHeader,
} from '../support/tar-blocks.js';

/** Feeds `stream` in `step`-byte chunks; returns the member and the bytes of data seen. */
async function read(stream: Buffer, step = 4096): Promise<{ member: TarMember; dataBytes: number }> {
  let member: TarMember | undefined;
  let dataBytes = 0;
  const reader = new TarMemberReader({
    member: (m) => {
      member = m;
    },
    data: (_offset, chunk) => {
      dataBytes += chunk.length;
    },
  });
  for (let i = 0; i < stream.length; i += step) await reader.write(stream.subarray(i, i + step));
  reader.finish();
  return { member: member!, dataBytes };
}

async function refused(stream: Buffer, message: RegExp, step = 4096): Promise<void> {
  const err = await read(stream, step).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BundleError);
  expect((err as Error).message).toMatch(message);
}

describe('PAX record lengths are strict decimal', () => {
  const member = plainMember('img', 10);

  it('a well-formed PAX header is read (path and size)', async () => {
    const pax = paxRecord(paxLine('path', 'from-pax') + paxLine('mtime', '1.5'));
    const { member: m } = await read(ended(Buffer.concat([pax, member])));
    expect(m.name).toBe('from-pax');
  });

  it('multi-byte UTF-8 values: the length counts bytes, not characters', async () => {
    const pax = paxRecord(paxLine('path', 'é'.repeat(40)));
    const { member: m } = await read(ended(Buffer.concat([pax, member])));
    expect(m.name).toBe('é'.repeat(40));
  });

  for (const [label, body] of [
    ['a + sign', '+12 path=abc\n'],
    ['a leading space', ' 12 path=ab\n'],
    ['a leading zero', '012 path=ab\n'],
    ['a length one short of the newline', '11 path=abc\n'],
    ['no newline where the length ends', '13 path=abc\nX'],
    ['a length past the header', '99 path=abc\n'],
    ['no = in the record', '11 pathabc\n'],
    ['a negative length', '-12 path=abc\n'],
    ['a length with six digits', '000012 path=abc\n'],
  ] as const)
    it(`refuses ${label}`, async () => {
      await refused(ended(Buffer.concat([paxRecord(body), member])), /corrupt tar PAX header/);
    });

  it('refuses "+1" records at once (was quadratic: each +1 re-scanned the rest)', async () => {
    const body = Buffer.from('+1'.repeat(30_000) + ' x=y\n');
    await refused(ended(Buffer.concat([paxRecord(body), member])), /record length is not a decimal/);
  });

  it('60 KB of tiny records parse in one pass (the last path wins)', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 9000; i++) lines.push(paxLine('a', String(i % 10)));
    lines.push(paxLine('path', 'last'));
    const body = lines.join('');
    expect(body.length).toBeGreaterThan(50_000);
    const { member: m } = await read(ended(Buffer.concat([paxRecord(body), member])), 100);
    expect(m.name).toBe('last');
  });
});

describe('at most 64 KiB of metadata before the member', () => {
  const member = plainMember('img', 10);

  it('refuses many long-name records (each under the per-record limit)', async () => {
    const one = Buffer.concat([rawHeader('L', 4000, '././@LongLink'), padded(Buffer.alloc(4000, 0x6e))]);
    const count = Math.ceil(MAX_METADATA_BYTES / one.length) + 1;
    await refused(
      ended(Buffer.concat([...Array<Buffer>(count).fill(one), member])),
      /PAX\/long-name headers/,
    );
  });

  it('refuses a run of empty PAX headers', async () => {
    const empty = rawHeader('x', 0, 'PaxHeader');
    const count = MAX_METADATA_BYTES / BLOCK + 1;
    await refused(
      ended(Buffer.concat([...Array<Buffer>(count).fill(empty), member])),
      /PAX\/long-name headers/,
    );
  });

  it('refuses many global PAX headers', async () => {
    const g = paxRecord(paxLine('comment', 'x'.repeat(3000)), 'g');
    await refused(ended(Buffer.concat([...Array<Buffer>(30).fill(g), member])), /PAX\/long-name headers/);
  });

  it('accepts a long name and a PAX header together', async () => {
    const long = memberHeaderBlocks({ name: 'n'.repeat(300), mode: 0o644, mtime: 1, size: 3 });
    const stream = ended(Buffer.concat([paxRecord(paxLine('mtime', '1')), long, padded(Buffer.from('abc'))]));
    const { member: m, dataBytes } = await read(stream);
    expect(m.name).toBe('n'.repeat(300));
    expect(dataBytes).toBe(3);
  });
});

/** An old-GNU sparse header: `entries` in the header, size and real size as given. */
function sparseHeader(
  entries: [number, number][],
  stored: number,
  realSize: number,
  extended: boolean,
): Buffer {
  const h = rawHeader('S', stored, 'img');
  entries.forEach(([o, l], i) => {
    writeTarNumber(h, 386 + i * 24, 12, o);
    writeTarNumber(h, 386 + i * 24 + 12, 12, l);
  });
  writeTarNumber(h, 483, 12, realSize);
  h[482] = extended ? 1 : 0;
  return fixChecksum(h);
}

describe('sparse extension blocks are counted and capped', () => {
  const four: [number, number][] = [
    [0, 1],
    [2, 1],
    [4, 1],
    [6, 1],
  ];

  it('refuses an empty extension block that says the map continues', async () => {
    const ext = Buffer.alloc(BLOCK);
    ext[504] = 1;
    const stream = Buffer.concat([sparseHeader(four, 4, 1 << 20, true), ...Array<Buffer>(1000).fill(ext)]);
    // Fed without an end: the refusal must come from the blocks themselves, not from finish().
    const reader = new TarMemberReader({ member: () => undefined, data: () => undefined });
    await expect(reader.write(stream)).rejects.toThrow(/map continues after an empty entry/);
  });

  it('refuses a partly filled extension block that says the map continues', async () => {
    const ext = Buffer.alloc(BLOCK);
    writeTarNumber(ext, 0, 12, 100);
    writeTarNumber(ext, 12, 12, 0);
    ext[504] = 1;
    const reader = new TarMemberReader({ member: () => undefined, data: () => undefined });
    await expect(reader.write(Buffer.concat([sparseHeader(four, 4, 1 << 20, true), ext]))).rejects.toThrow(
      /map continues after an empty entry/,
    );
  });

  it('refuses a header whose own map is not full yet says it continues', async () => {
    const reader = new TarMemberReader({ member: () => undefined, data: () => undefined });
    await expect(reader.write(sparseHeader(four.slice(0, 2), 2, 100, true))).rejects.toThrow(
      /map continues after an empty entry/,
    );
  });

  it('refuses a map that covers more than the member stores, at the block where it does', async () => {
    const ext = Buffer.alloc(BLOCK);
    for (let i = 0; i < 21; i++) {
      writeTarNumber(ext, i * 24, 12, 100 + i * 10);
      writeTarNumber(ext, i * 24 + 12, 12, 5);
    }
    ext[504] = 1;
    const reader = new TarMemberReader({ member: () => undefined, data: () => undefined });
    const stream = Buffer.concat([sparseHeader(four, 50, 1 << 20, true), ext, ext, ext]);
    await expect(reader.write(stream)).rejects.toThrow(/covers more than the 50 bytes/);
  });

  it('refuses an entry after a zero-length one (GNU tar writes it only last)', async () => {
    const reader = new TarMemberReader({ member: () => undefined, data: () => undefined });
    const head = sparseHeader(
      [
        [0, 1],
        [5, 0],
        [6, 1],
      ],
      2,
      10,
      false,
    );
    await expect(reader.write(head)).rejects.toThrow(/after the zero-length last one/);
  });

  it('a long map of one-byte extents stops at the entry cap', async () => {
    const reader = new TarMemberReader({ member: () => undefined, data: () => undefined });
    await reader.write(sparseHeader(four, 2 ** 33, 2 ** 34, true));
    const ext = Buffer.alloc(BLOCK);
    ext[504] = 1;
    let offset = 8;
    let err: unknown;
    let blocks = 0;
    while (err === undefined && blocks < MAX_SPARSE_EXTENSIONS + 10) {
      for (let i = 0; i < 21; i++, offset += 2) {
        writeTarNumber(ext, i * 24, 12, offset);
        writeTarNumber(ext, i * 24 + 12, 12, 1);
      }
      blocks++;
      await reader.write(ext).catch((e: unknown) => (err = e));
    }
    expect(err).toBeInstanceOf(BundleError);
    expect((err as Error).message).toMatch(/more than 1000000 entries/);
    expect(blocks).toBeLessThanOrEqual(MAX_SPARSE_EXTENSIONS);
  });
});

describe('at most one record of zeros after the end marker', () => {
  const body = plainMember('img', 100);

  it('accepts GNU padding and a full extra record of zeros', async () => {
    const withEnd = ended(body);
    await read(
      Buffer.concat([withEnd, Buffer.alloc(MAX_TRAILING_ZEROS - (withEnd.length - body.length - 1024))]),
    );
  });

  it('refuses one byte of zeros more', async () => {
    const stream = Buffer.concat([body, Buffer.alloc(1024 + MAX_TRAILING_ZEROS + 1)]);
    await refused(stream, /zeros after the end of the tar archive/);
  });

  it('refuses megabytes of zeros without reading them all', async () => {
    const reader = new TarMemberReader({ member: () => undefined, data: () => undefined });
    await reader.write(Buffer.concat([body, Buffer.alloc(1024)]));
    const zeros = Buffer.alloc(4096);
    let fed = 0;
    let err: unknown;
    while (err === undefined && fed < 64 * 1024 * 1024) {
      await reader.write(zeros).catch((e: unknown) => (err = e));
      fed += zeros.length;
    }
    expect(err).toBeInstanceOf(BundleError);
    expect(fed).toBeLessThanOrEqual(MAX_TRAILING_ZEROS + zeros.length);
  });
});

describe('the caller may reuse its chunk as soon as write() returns', () => {
  it('a sparse header split from its extension block keeps its name', async () => {
    const map = Array.from({ length: 6 }, (_, i) => ({ offset: i * 2048, length: 512 }));
    const header = memberHeaderBlocks({ name: 'kept', mode: 0o644, mtime: 1, size: 16384, sparseMap: map });
    const stream = ended(Buffer.concat([header, Buffer.alloc(6 * 512, 1)]));
    let member: TarMember | undefined;
    const reader = new TarMemberReader({
      member: (m) => {
        member = m;
      },
      data: () => undefined,
    });
    const chunk = Buffer.alloc(BLOCK);
    for (let i = 0; i < stream.length; i += BLOCK) {
      stream.copy(chunk, 0, i, i + BLOCK);
      await reader.write(chunk);
      chunk.fill(0x41); // what a decompressor reusing its output buffer would do
    }
    reader.finish();
    expect(member!.name).toBe('kept');
    expect(member!.sparseMap).toEqual(map);
  });
});
