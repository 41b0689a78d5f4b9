// Property tests of the tar reader: the fixtures' GNU tar streams mutated, streams our writer
// produces for random members, and streams of random headers. Every input ends in a BundleError or
// in a member whose data is consistent; a mutated stream that is accepted extracts to the same bytes
// as GNU tar extracts from it.
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOCK, memberHeaderBlocks, type SparseEntry } from '../../src/format/tar-header.js';
import { TarMemberReader, type TarMember } from '../../src/format/tar-reader.js';
import { ended, padded, rawHeader, paxRecord } from '../support/tar-blocks.js';
import {
  chunking,
  fixtureTar,
  labelled,
  mutated,
  outcome,
  params,
  pieces,
  randomBytes,
  runs,
  sandbox,
  smallCases,
  timeoutFor,
} from './fuzz-support.js';

let box: { done: () => void };
beforeAll(() => {
  box = sandbox('tar');
});
afterAll(() => box.done());

/** Largest member rebuilt in memory to compare with GNU tar. */
const MAX_REBUILT = 16 * 1024 * 1024;

interface Read {
  member: TarMember;
  /** The member's bytes (holes as zeros), when small enough to hold. */
  file: Buffer | undefined;
}

/** A broken promise of the reader: a plain Error, so the property fails (it is not a BundleError). */
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`tar reader: ${what}`);
}

/** Reads `stream` cut into `size`-byte chunks, checking the reader's promises as it goes. */
async function readTar(stream: Buffer, size: number): Promise<Read> {
  let member: TarMember | undefined;
  let file: Buffer | undefined;
  let next = 0;
  let total = 0;
  let extent = 0;
  const reader = new TarMemberReader({
    member: (m) => {
      check(member === undefined, 'member() called twice');
      member = m;
      if (m.size <= MAX_REBUILT) file = Buffer.alloc(m.size);
    },
    data: (offset, chunk) => {
      check(member !== undefined, 'data before member()');
      check(offset >= next, 'data out of order');
      check(offset + chunk.length <= member!.size, 'data beyond the member size');
      const map = member!.sparseMap;
      if (map) {
        // Every data byte lands inside an extent, never in a hole.
        while (extent < map.length && offset >= map[extent]!.offset + map[extent]!.length) extent++;
        const e = map[extent];
        check(
          e !== undefined && offset >= e.offset && offset + chunk.length <= e.offset + e.length,
          'data outside the sparse map',
        );
      }
      next = offset + chunk.length;
      total += chunk.length;
      if (file) chunk.copy(file, offset);
    },
  });
  for (const p of pieces(stream, size)) await reader.write(p);
  const m = reader.finish();
  expect(m).toBe(member);
  expect(m.name).not.toMatch(/[/\\\0]/);
  const stored = m.sparseMap ? m.sparseMap.reduce((s, e) => s + e.length, 0) : m.size;
  expect(total).toBe(stored);
  return { member: m, file };
}

/** GNU tar's extraction of the one member to stdout, or undefined when it fails. */
function gnuTar(stream: Buffer): Buffer | undefined {
  const r = spawnSync('tar', ['-xOf', '-'], { input: stream, maxBuffer: 2 * MAX_REBUILT });
  return r.status === 0 ? r.stdout : undefined;
}

describe('tar reader on mutated GNU tar streams (golden fixtures)', () => {
  const cases = smallCases();
  it('there are fixture streams to mutate', () => expect(cases.length).toBeGreaterThanOrEqual(4));
  for (const c of cases) {
    const n = runs(60);
    it(
      c.case,
      async () => {
        const tar = fixtureTar(c);
        const valid = await readTar(tar, 65536);
        expect(valid.member.name).toBe(c.expected!.name);
        expect(valid.member.size).toBe(c.image.size);
        if (valid.file) expect(valid.file.equals(gnuTar(tar)!)).toBe(true);
        await fc.assert(
          fc.asyncProperty(mutated(tar), chunking, async (input, size) => {
            const r = await outcome('tar', () => readTar(input, size));
            if (!r.ok || !r.value.file) return;
            // Accepted: GNU tar must accept it too and extract the same bytes.
            const theirs = gnuTar(input);
            expect(theirs, 'GNU tar refuses a stream we accepted').toBeDefined();
            expect(r.value.file.equals(theirs!)).toBe(true);
          }),
          params(n),
        );
      },
      timeoutFor(n),
    );
  }
});

const plainName = fc.stringMatching(/^[A-Za-z0-9._-]{1,200}$/).filter((s) => s !== '.' && s !== '..');

/** A sorted sparse map inside `size` bytes: disjoint extents with holes between them. */
const sparseMember = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 3000 })), {
    maxLength: 60,
  })
  .chain((gaps) => {
    let at = 0;
    const map: SparseEntry[] = [];
    for (const [hole, length] of gaps) {
      at += hole;
      map.push({ offset: at, length });
      at += length;
    }
    return fc.integer({ min: at, max: at + 5000 }).map((size) => ({ map, size }));
  });

describe('tar reader reads back what the writer writes', () => {
  const n = runs(100);
  it(
    'random names, sizes and sparse maps, any chunking',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          plainName,
          fc.option(sparseMember, { nil: undefined }),
          fc.integer({ min: 0, max: 20_000 }),
          fc.integer({ min: 0, max: 0o7777 }),
          chunking,
          async (name, sparse, plainSize, mode, size) => {
            const info = {
              name,
              mode,
              mtime: 1_400_000_000,
              size: sparse ? sparse.size : plainSize,
              ...(sparse ? { sparseMap: sparse.map } : {}),
            };
            const extents = sparse ? sparse.map : [{ offset: 0, length: plainSize }];
            const file = Buffer.alloc(info.size);
            extents.forEach((e, i) => file.fill((i % 250) + 1, e.offset, e.offset + e.length));
            const data = Buffer.concat(extents.map((e) => file.subarray(e.offset, e.offset + e.length)));
            const stream = ended(Buffer.concat([memberHeaderBlocks(info), padded(data)]));
            const r = await outcome('tar', () => readTar(stream, size));
            expect(r.ok).toBe(true);
            if (!r.ok) return;
            expect(r.value.member).toMatchObject({ name, mode, size: info.size });
            expect(r.value.file!.equals(file)).toBe(true);
          },
        ),
        params(n),
      );
    },
    timeoutFor(n),
  );
});

const typeflag = fc.constantFrom('0', '\0', '7', 'S', 'L', 'K', 'x', 'g', '1', '2', '5', 'V', 'Z');

/** A header of a random type with a valid checksum, and some data (possibly a PAX record set). */
const randomRecord = fc.oneof(
  fc
    .tuple(typeflag, fc.integer({ min: 0, max: 70_000 }), fc.uint8Array({ maxLength: 1200 }))
    .map(([t, size, data]) => Buffer.concat([rawHeader(t, size, 'r'), padded(Buffer.from(data))])),
  fc
    .array(
      fc.tuple(
        fc.stringMatching(/^[ -~]{0,6}$/),
        fc.stringMatching(/^[a-z.]{0,12}$/),
        fc.string({ maxLength: 40 }),
      ),
      { maxLength: 8 },
    )
    .map((recs) => paxRecord(recs.map(([len, k, v]) => `${len} ${k}=${v}\n`).join(''))),
  fc.constant(Buffer.alloc(BLOCK)),
);

describe('tar reader on random streams', () => {
  const n = runs(200);
  it(
    'random bytes',
    async () => {
      await fc.assert(
        fc.asyncProperty(randomBytes(4096), chunking, async (bytes, size) => {
          await outcome('tar', () => readTar(bytes, size));
        }),
        params(n),
      );
    },
    timeoutFor(n),
  );
  it(
    'random headers with valid checksums',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(randomRecord, { maxLength: 12 }), chunking, async (records, size) => {
          await outcome('tar', () => readTar(labelled(Buffer.concat(records)), size));
        }),
        params(n),
      );
    },
    timeoutFor(n),
  );
});
