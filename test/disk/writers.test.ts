// Each format's writer driven directly with synthetic writes (holes at the start, middle and end,
// sizes off every unit boundary, an empty image, one smaller than a cluster, a plain member whose
// zero runs must not be stored), judged by qemu-img against a raw file holding the same bytes.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImageSink } from '../../src/disk/create-sink.js';
import { DISK_FORMAT_SUFFIX, type DiskFormat } from '../../src/disk/image-sink.js';
import type { TarMember } from '../../src/format/tar-reader.js';
import { projectRoot, tempDir } from '../support/fixtures.js';
import { vhdSize } from '../../src/disk/vhd.js';
import { adler32 } from '../../src/disk/vmdk.js';
import { expectCheckClean, expectSameAsRaw, FORMATS, qemuImg, qemuInfo } from './qemu.js';

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('disk-writers');
});
afterAll(() => tmp.remove());

const MiB = 1024 * 1024;

interface Scenario {
  readonly name: string;
  readonly size: number;
  /** Data written, in order; everything else is a hole. */
  readonly writes: readonly { offset: number; data: Buffer }[];
  /** A plain member (zero runs found by the writer) rather than a GNU sparse one. */
  readonly plain?: boolean;
}

function random(n: number): Buffer {
  return crypto.randomBytes(n);
}

/** Cut `data` into pieces of `piece` bytes, as a tar stream would hand them over. */
function pieces(offset: number, data: Buffer, piece: number): { offset: number; data: Buffer }[] {
  const out = [];
  for (let at = 0; at < data.length; at += piece)
    out.push({ offset: offset + at, data: data.subarray(at, Math.min(at + piece, data.length)) });
  return out;
}

const scenarios: Scenario[] = [
  {
    name: 'holes at the start, middle and end; size off every unit boundary',
    size: 7 * MiB + 777,
    writes: [
      ...pieces(MiB + 100, random(300 * 1024), 40_000),
      { offset: 3 * MiB + 2 * 65536 - 10, data: random(20) },
      ...pieces(5 * MiB, random(MiB), 65536),
    ],
  },
  {
    name: 'data on both sides of the 32 MiB and 512 MiB table boundaries, and in the last byte',
    size: 600 * MiB + 3,
    writes: [
      { offset: 0, data: random(4096) },
      { offset: 32 * MiB - 1000, data: random(2000) },
      { offset: 512 * MiB - 1000, data: random(2000) },
      { offset: 600 * MiB + 2, data: random(1) },
    ],
  },
  {
    name: 'a plain member: its zero runs are not stored',
    size: 3 * MiB + 5,
    plain: true,
    writes: pieces(0, Buffer.concat([random(MiB), Buffer.alloc(MiB + 3), random(MiB + 2)]), 7777),
  },
  { name: 'an empty image', size: 0, plain: true, writes: [] },
  {
    name: 'an image smaller than one cluster',
    size: 1000,
    plain: true,
    writes: [{ offset: 0, data: random(1000) }],
  },
  { name: 'an image that is all hole', size: 5 * MiB, writes: [] },
];

/** Allocation unit of each format: qcow2 cluster, VMDK grain, VHD block, file system block. */
const UNIT = { qcow2: 65536, vmdk: 65536, vhd: 2 * MiB, 'vhd-fixed': 4096 } as const;

/** Bytes of the units holding non-zero data. */
function storedUnits(s: Scenario, unit: number): number {
  const units = new Set<number>();
  for (const w of s.writes)
    for (let at = 0; at < w.data.length; at++)
      if (w.data[at] !== 0) {
        const u = Math.floor((w.offset + at) / unit);
        units.add(u);
        at = (u + 1) * unit - w.offset - 1;
      }
  return units.size * unit;
}

function member(s: Scenario, name: string): TarMember {
  return {
    name,
    mode: 0o640,
    mtime: 1_400_000_000,
    size: s.size,
    ...(s.plain ? {} : { sparseMap: s.writes.map((w) => ({ offset: w.offset, length: w.data.length })) }),
  };
}

function writeRaw(s: Scenario, file: string): void {
  const fd = fs.openSync(file, 'w');
  for (const w of s.writes) fs.writeSync(fd, w.data, 0, w.data.length, w.offset);
  fs.ftruncateSync(fd, s.size);
  fs.closeSync(fd);
}

describe.each(FORMATS)('%s writer', (format) => {
  for (const [i, s] of scenarios.entries()) {
    it(s.name, async () => {
      const dir = fs.mkdtempSync(path.join(tmp.dir, `${format}-${i}-`));
      const raw = path.join(dir, 'reference.raw');
      writeRaw(s, raw);
      const sink = createImageSink(format, dir, member(s, 'disk'));
      await sink.open();
      for (const w of s.writes) await sink.write(w.offset, Buffer.from(w.data));
      const out = await sink.commit();
      expect(fs.readdirSync(dir).sort()).toEqual([path.basename(out), 'reference.raw'].sort());
      expect(fs.statSync(out).mode & 0o777).toBe(0o640);
      expectCheckClean(format, out);
      expectSameAsRaw(format, raw, out);
      expect(qemuInfo(format, out)['virtual-size']).toBeGreaterThanOrEqual(s.size);
      // Holes (and a plain member's zero runs) take no room: the file holds the format's units
      // that were written to, plus metadata.
      expect(fs.statSync(out).blocks * 512).toBeLessThan(storedUnits(s, UNIT[format]) + MiB);
    });
  }

  it('discard() leaves nothing behind', async () => {
    const dir = fs.mkdtempSync(path.join(tmp.dir, `${format}-discard-`));
    const sink = createImageSink(format, dir, member(scenarios[0]!, 'disk'));
    await sink.open();
    await sink.write(MiB, random(100_000));
    await sink.discard();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('VHD disk size', () => {
  it('matches the geometry qemu-img gives a VHD of the same size', () => {
    for (const size of [
      512,
      100 * 1024,
      64 * MiB,
      1024 * MiB + 512,
      40 * 1024 * MiB - 4096,
      200 * 1024 * MiB,
    ]) {
      const file = path.join(tmp.dir, `geometry-${size}.vhd`);
      const r = qemuImg(['create', '-q', '-f', 'vpc', '-o', 'subformat=dynamic', file, String(size)]);
      expect(r.code, r.stderr).toBe(0);
      const footer = fs.readFileSync(file).subarray(0, 512);
      const ours = vhdSize(size);
      expect([ours.geometry.cylinders, ours.geometry.heads, ours.geometry.sectorsPerTrack]).toEqual([
        footer.readUInt16BE(56),
        footer[58],
        footer[59],
      ]);
      expect(ours.bytes).toBe(Number(footer.readBigUInt64BE(48)));
    }
  });
});

describe('VMDK grain checksum', () => {
  it('adler32 is what zlib checks: a stream with it inflates, with it off by one does not', () => {
    for (const data of [Buffer.alloc(0), Buffer.alloc(65536, 0xff), random(65536), random(6000)]) {
      const body = zlib.deflateRawSync(data);
      const trailer = Buffer.alloc(4);
      trailer.writeUInt32BE(adler32(data));
      const stream = Buffer.concat([Buffer.from([0x78, 0x9c]), body, trailer]);
      expect(zlib.inflateSync(stream)).toEqual(data);
      trailer.writeUInt32BE((adler32(data) + 1) >>> 0);
      expect(() => zlib.inflateSync(Buffer.concat([Buffer.from([0x78, 0x9c]), body, trailer]))).toThrow();
    }
  });
});

/** Peak RSS (KiB) of a fresh node process writing `mib` MiB of random data through the writer (dist/). */
function peakRss(format: DiskFormat, mib: number, dir: string): number {
  const script = `
    import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
    import { createImageSink } from ${JSON.stringify(path.join(projectRoot, 'dist/disk/create-sink.js'))};
    const [format, mib, dir] = process.argv.slice(1);
    const size = Number(mib) * 1048576;
    const sink = createImageSink(format, dir, { name: 'big', mode: 0o600, mtime: 0, size });
    await sink.open();
    const chunk = Buffer.alloc(1048576);
    for (let at = 0; at < size; at += chunk.length) {
      crypto.randomFillSync(chunk);
      await sink.write(at, chunk);
    }
    await sink.commit();
    console.log(process.resourceUsage().maxRSS);
  `;
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', script, format, String(mib), dir],
    {
      encoding: 'utf8',
    },
  );
  fs.rmSync(path.join(dir, `big${DISK_FORMAT_SUFFIX[format]}`));
  return Number(out.trim());
}

describe('memory', () => {
  // The margin allows for garbage the collector has not yet returned (CI once measured 43 MiB on a
  // loaded machine); a writer that held the image, or a fraction of it, would be 240 MiB over.
  it.each(FORMATS)('%s: peak RSS writing 256 MiB is within 64 MiB of writing 16 MiB', (format) => {
    const dir = fs.mkdtempSync(path.join(tmp.dir, `${format}-rss-`));
    const small = peakRss(format, 16, dir);
    const big = peakRss(format, 256, dir);
    expect(small).toBeGreaterThan(0);
    expect(big - small).toBeLessThan(64 * 1024);
  });
});

describe('format limits', () => {
  it('an image larger than 2040 GiB is refused as VHD before anything is written, with what to use instead', () => {
    const dir = fs.mkdtempSync(path.join(tmp.dir, 'vhd-limit-'));
    const big = { name: 'huge', mode: 0o600, mtime: 0, size: 2041 * 1024 ** 3 };
    for (const format of ['vhd', 'vhd-fixed'] as const)
      expect(() => createImageSink(format, dir, big)).toThrow(/more than a VHD can hold.*2040 GiB/);
    expect(vhdSize(2040 * 1024 ** 3).bytes).toBe(2040 * 1024 ** 3);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
