// Data-extent detection: the native SEEK_DATA/SEEK_HOLE path against the maps the real tool saw
// (golden fixtures' case.json), the TypeScript fallback against the native path, and --sparse=zeros.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataExtents, isSparseFile, scanZeroHoles } from '../../src/io/extents.js';
import type { Extent } from '../../src/io/extents.js';
import { loadAddon, nativeAddon } from '../../src/io/native.js';
import { generateFixtureImage } from '../support/fixture-image.js';
import type { GeneratedImage } from '../support/fixture-image.js';
import { fixturesRoot } from '../support/fixtures.js';

const fixturesDir = fixturesRoot;

interface CaseImage {
  file: string;
  size: number;
  sparse: boolean;
  data_map_at_bundle_time: [number, number][];
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'amibundle-extents-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function toPairs(extents: readonly Extent[]): [number, number][] {
  return extents.map((e) => [e.offset, e.length]);
}

async function withFd<T>(file: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = fs.openSync(file, 'r');
  try {
    return await fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The addon itself (whatever AMIBUNDLE_NO_NATIVE says), as pairs. */
function nativeMap(fd: number, size: number): [number, number][] {
  const flat = loadAddon().addon!.dataExtents(fd, size);
  const out: [number, number][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

/** Both paths on one file; returns [native, fallback] maps, after checking the default path agrees. */
async function bothMaps(file: string, size = fs.statSync(file).size): Promise<[number, number][][]> {
  return withFd(file, async (fd) => {
    const native = nativeMap(fd, size);
    const fallback = toPairs(await dataExtents(fd, size, { native: false }));
    expect(toPairs(await dataExtents(fd, size))).toEqual(native);
    return [native, fallback];
  });
}

/** A file of `size` bytes with `writes` ([offset, byte, length]) and holes elsewhere. */
function sparseFile(name: string, size: number, writes: [number, number, number][]): string {
  const file = path.join(tmp, name);
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, size);
    for (const [off, byte, len] of writes) fs.writeSync(fd, Buffer.alloc(len, byte), 0, len, off);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

describe('native addon', () => {
  // CI builds the addon in `npm ci`; a silent build break must fail here rather than slow everything down.
  it('native addon is loaded', () => {
    const load = loadAddon();
    expect(load.error).toBeUndefined();
    expect(typeof load.addon?.dataExtents).toBe('function');
    expect(typeof load.addon?.zeroBlocks).toBe('function');
  });

  it('AMIBUNDLE_NO_NATIVE=1 switches it off', () => {
    const before = process.env.AMIBUNDLE_NO_NATIVE;
    try {
      process.env.AMIBUNDLE_NO_NATIVE = '1';
      expect(nativeAddon()).toBeUndefined();
      delete process.env.AMIBUNDLE_NO_NATIVE;
      expect(nativeAddon()).toBeDefined();
    } finally {
      if (before === undefined) delete process.env.AMIBUNDLE_NO_NATIVE;
      else process.env.AMIBUNDLE_NO_NATIVE = before;
    }
  });

  it('reports errno names: EBADF for a closed fd', () => {
    const addon = loadAddon().addon!;
    const fd = fs.openSync(sparseFile('closed.img', 4096, []), 'r');
    fs.closeSync(fd);
    expect(() => addon.dataExtents(fd, 4096)).toThrow(expect.objectContaining({ code: 'EBADF' }) as Error);
  });

  it('leaves the file position where it was', () => {
    const file = sparseFile('pos.img', 1 << 20, [[65536, 7, 4096]]);
    const fd = fs.openSync(file, 'r');
    try {
      const first = Buffer.alloc(10);
      fs.readSync(fd, first, 0, 10, null); // moves the position to 10
      loadAddon().addon!.dataExtents(fd, 1 << 20);
      const next = Buffer.alloc(4);
      expect(fs.readSync(fd, next, 0, 4, null)).toBe(4);
      // Still reading from offset 10: a hole, so zeros; the map itself is right too.
      expect([...next]).toEqual([0, 0, 0, 0]);
      expect(loadAddon().addon!.dataExtents(fd, 1 << 20)).toEqual([65536, 4096]);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('golden fixture images', () => {
  const cases = ['a-tiny', 'b-sparse', 'c-multipart', 'g-allhole', 'h-sparse-tail'];
  for (const name of cases) {
    it(`${name}: SEEK_DATA map and fallback equal data_map_at_bundle_time`, async () => {
      const caseDir = path.join(fixturesDir, name);
      const image = (
        JSON.parse(fs.readFileSync(path.join(caseDir, 'case.json'), 'utf8')) as { image: CaseImage }
      ).image;
      const out = path.join(tmp, image.file);
      generateFixtureImage(image as unknown as GeneratedImage, out);

      const st = fs.statSync(out);
      expect(st.size).toBe(image.size);
      expect(isSparseFile(st)).toBe(image.sparse);
      const [native, fallback] = await bothMaps(out);
      expect(native).toEqual(image.data_map_at_bundle_time);
      expect(fallback).toEqual(image.data_map_at_bundle_time);
      fs.rmSync(out);
    });
  }
});

describe('hand-made files', () => {
  it('all-hole file: no extents', async () => {
    const file = sparseFile('hole.img', 3 << 20, []);
    expect(isSparseFile(fs.statSync(file))).toBe(true);
    expect(await bothMaps(file)).toEqual([[], []]);
  });

  it('hole at the start, data in the middle', async () => {
    const file = sparseFile('start.img', 2 << 20, [[1 << 20, 0xab, 12288]]);
    const want = [[1 << 20, 12288]];
    expect(await bothMaps(file)).toEqual([want, want]);
  });

  it('data at the end only, size not a multiple of 4096', async () => {
    const size = (5 << 20) + 1234;
    const file = sparseFile('end.img', size, [[size - 1000, 0x55, 1000]]);
    // Block granular: the data extent starts at the filesystem block holding the first byte.
    const start = Math.floor((size - 1000) / 4096) * 4096;
    const want = [[start, size - start]];
    expect(await bothMaps(file)).toEqual([want, want]);
  });

  it('several extents across 1 MiB chunk edges, merged and sorted', async () => {
    const file = sparseFile('multi.img', 8 << 20, [
      [(1 << 20) - 4096, 1, 8192], // straddles the first chunk edge
      [3 << 20, 2, 4096],
      [(3 << 20) + 4096, 3, 4096], // adjacent to the previous write: one extent
      [(7 << 20) + 8192, 4, 4096],
    ]);
    const want = [
      [(1 << 20) - 4096, 8192],
      [3 << 20, 8192],
      [(7 << 20) + 8192, 4096],
    ];
    expect(await bothMaps(file)).toEqual([want, want]);
  });

  it('clips to the size asked for', async () => {
    const file = sparseFile('clip.img', 4 << 20, [
      [0, 9, 8192],
      [2 << 20, 9, 8192],
    ]);
    const want = [
      [0, 8192],
      [2 << 20, 100],
    ];
    expect(await bothMaps(file, (2 << 20) + 100)).toEqual([want, want]);
  });

  it('empty file: no extents', async () => {
    const file = sparseFile('empty.img', 0, []);
    expect(isSparseFile(fs.statSync(file))).toBe(false);
    expect(await bothMaps(file)).toEqual([[], []]);
  });

  it('fully written file with a zero run is one extent (not sparse by the st_blocks test)', async () => {
    const file = path.join(tmp, 'dense.img');
    const data = Buffer.alloc(3 * 4096 + 17, 0x11);
    data.fill(0, 4096, 8192);
    fs.writeFileSync(file, data);
    expect(isSparseFile(fs.statSync(file))).toBe(false);
    const want = [[0, data.length]];
    expect(await bothMaps(file)).toEqual([want, want]);
  });
});

describe('isSparseFile', () => {
  it('is GNU tar 1.34 ST_IS_SPARSE: st_blocks < ceil(size / 512)', () => {
    expect(isSparseFile({ size: 0, blocks: 0 })).toBe(false);
    expect(isSparseFile({ size: 1, blocks: 0 })).toBe(true);
    expect(isSparseFile({ size: 1, blocks: 1 })).toBe(false);
    expect(isSparseFile({ size: 513, blocks: 1 })).toBe(true);
    expect(isSparseFile({ size: 513, blocks: 2 })).toBe(false);
    expect(isSparseFile({ size: 4096, blocks: 8 })).toBe(false);
    expect(isSparseFile({ size: 102733, blocks: 208 })).toBe(false);
  });
});

describe('scanZeroHoles (--sparse=zeros)', () => {
  it('turns written zero runs into holes, 512-byte aligned', async () => {
    const file = path.join(tmp, 'zeros.img');
    const size = 3 * 65536 + 700;
    const data = Buffer.alloc(size, 0x41);
    data.fill(0, 4096, 4096 + 16384); // a 16 KiB written zero run
    data.fill(0, 30000, 31000); // holds exactly the aligned block [30208, 30720)
    data.fill(0, 65536 + 512, 65536 + 1024 + 100); // one aligned block, then 100 zero bytes of the next
    data.fill(0, size - 700); // zero tail from an aligned offset: one full block and a short last block
    fs.writeFileSync(file, data);

    const want = [
      [0, 4096],
      [4096 + 16384, 30208 - (4096 + 16384)],
      [30720, 65536 + 512 - 30720],
      [65536 + 1024, size - 700 - (65536 + 1024)],
    ];

    await withFd(file, async (fd) => {
      const whole = [{ offset: 0, length: size }];
      expect(toPairs(await scanZeroHoles(fd, whole))).toEqual(want);
      expect(toPairs(await scanZeroHoles(fd, whole, 512, { native: false }))).toEqual(want);
    });
  });

  it('works inside given extents, including unaligned extent edges and chunk-crossing runs', async () => {
    const file = path.join(tmp, 'zeros2.img');
    const size = (3 << 20) + 300;
    const data = Buffer.alloc(size, 0x7f);
    data.fill(0, (1 << 20) - 2048, (1 << 20) + 2048); // zero run across the 1 MiB chunk edge
    data.fill(0, 1000, 1536); // the extent below starts at 1000: its first (partial) block is zero
    fs.writeFileSync(file, data);
    const extents = [
      { offset: 1000, length: (2 << 20) - 1000 },
      { offset: 3 << 20, length: 300 },
    ];
    const want = [
      [1536, (1 << 20) - 2048 - 1536],
      [(1 << 20) + 2048, (2 << 20) - ((1 << 20) + 2048)],
      [3 << 20, 300],
    ];
    await withFd(file, async (fd) => {
      expect(toPairs(await scanZeroHoles(fd, extents))).toEqual(want);
      expect(toPairs(await scanZeroHoles(fd, extents, 512, { native: false }))).toEqual(want);
    });
  });

  it('an all-zero file has no data left', async () => {
    const file = path.join(tmp, 'allzero.img');
    fs.writeFileSync(file, Buffer.alloc(10000));
    await withFd(file, async (fd) => {
      expect(await scanZeroHoles(fd, [{ offset: 0, length: 10000 }])).toEqual([]);
      expect(await scanZeroHoles(fd, [{ offset: 0, length: 10000 }], 512, { native: false })).toEqual([]);
    });
  });
});
