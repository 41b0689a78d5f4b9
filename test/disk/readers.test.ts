// The disk image readers against the real qemu-img: raw images with holes and data (an ext4 file
// system made by mkfs.ext4 -d, random data around holes) converted by `qemu-img convert` to every
// format and subformat amibundle reads, and written by amibundle's own writers, must read back
// byte for byte as the raw, with holes found rather than read. Then what must be refused: a
// backing file, a differencing VHD, a descriptor-only VMDK, zstd, truncated and corrupted files,
// each with one line naming the file.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createImageSink } from '../../src/disk/create-sink.js';
import { MAX_CHUNK, openDiskImage } from '../../src/disk/read/detect.js';
import type { DiskFormat } from '../../src/disk/image-sink.js';
import { BundleError } from '../../src/errors.js';
import { dataExtents } from '../../src/io/extents.js';
import { projectRoot, tempDir } from '../support/fixtures.js';
import { QEMU_FORMAT, qemuImg } from './qemu.js';
import { rawDigest, readFile } from './read-image.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; remove: () => void };
const raws: Record<string, string> = {};

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function qemu(args: string[]): void {
  const r = qemuImg(args);
  expect(r.code, r.stderr).toBe(0);
}

beforeAll(() => {
  tmp = tempDir('disk-readers');
  // An ext4 file system holding the project's sources: what real images look like.
  const ext4 = path.join(tmp.dir, 'ext4.raw');
  run('truncate', ['-s', '40M', ext4]);
  run('mkfs.ext4', ['-q', '-F', '-d', path.join(projectRoot, 'src'), ext4]);
  raws['ext4'] = ext4;
  // Random data around holes, a run of written zeros, a size off every unit boundary (not
  // even a whole sector), data in the last byte.
  const holes = path.join(tmp.dir, 'holes.raw');
  const fd = fs.openSync(holes, 'w');
  const put = (offset: number, data: Buffer): void => void fs.writeSync(fd, data, 0, data.length, offset);
  put(0, crypto.randomBytes(3 * 65536 + 100));
  put(2 * MiB - 700, crypto.randomBytes(1400));
  put(5 * MiB, Buffer.alloc(MiB)); // written zeros
  put(9 * MiB + 12345, crypto.randomBytes(3 * MiB));
  put(32 * MiB - 10, crypto.randomBytes(20)); // across a VMDK grain table's span
  put(37 * MiB + 776, crypto.randomBytes(1));
  fs.closeSync(fd);
  raws['holes'] = holes;
}, 120_000);
afterAll(() => tmp.remove());

/** What `qemu-img convert` makes, with the format each is read as. */
const QEMU_TARGETS = [
  { name: 'qcow2 v2 (compat=0.10)', args: ['-O', 'qcow2', '-o', 'compat=0.10'], format: 'qcow2' },
  { name: 'qcow2 v3', args: ['-O', 'qcow2', '-o', 'compat=1.1'], format: 'qcow2' },
  { name: 'qcow2 v3, compressed', args: ['-c', '-O', 'qcow2'], format: 'qcow2' },
  { name: 'qcow2 v3, 4 KiB clusters', args: ['-O', 'qcow2', '-o', 'cluster_size=4096'], format: 'qcow2' },
  { name: 'qcow2 v3, 2 MiB clusters', args: ['-O', 'qcow2', '-o', 'cluster_size=2M'], format: 'qcow2' },
  { name: 'vmdk monolithicSparse', args: ['-O', 'vmdk'], format: 'vmdk' },
  { name: 'vmdk streamOptimized', args: ['-O', 'vmdk', '-o', 'subformat=streamOptimized'], format: 'vmdk' },
  { name: 'vpc dynamic', args: ['-O', 'vpc', '-o', 'subformat=dynamic'], format: 'vhd' },
  { name: 'vpc fixed', args: ['-O', 'vpc', '-o', 'subformat=fixed'], format: 'vhd-fixed' },
] as const;

/** What qemu-img says the guest size is (fixed VHD is not probed: its format must be named). */
function virtualSize(file: string, qemuFormat: string): number {
  const r = qemuImg(['info', '--output=json', '-f', qemuFormat, file]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { 'virtual-size': number })['virtual-size'];
}

/** Bytes of data the raw file holds (SEEK_DATA): what a reader should read at most, give or take units. */
async function allocated(raw: string): Promise<number> {
  const fd = fs.openSync(raw, 'r');
  try {
    return (await dataExtents(fd, fs.statSync(raw).size)).reduce((n, e) => n + e.length, 0);
  } finally {
    fs.closeSync(fd);
  }
}

describe.each(['ext4', 'holes'])('images made by qemu-img convert from the %s raw', (which) => {
  it.each(QEMU_TARGETS)('$name reads back as the raw, byte for byte', async ({ name, args, format }) => {
    const raw = raws[which]!;
    const out = path.join(tmp.dir, `${which}-${name.replace(/\W+/g, '-')}`);
    qemu(['convert', '-f', 'raw', ...args, raw, out]);
    const size = virtualSize(out, args[args.indexOf('-O') + 1]!);
    expect(size).toBeGreaterThanOrEqual(fs.statSync(raw).size);
    const got = await readFile(out);
    expect(got.format).toBe(format);
    expect(got.virtualSize).toBe(size);
    expect(got.sha256).toBe(rawDigest(raw, size));
    // Holes are found, not read: the data handed out is the raw's data rounded to the format's
    // units (2 MiB at most), never the whole disk.
    const data = await allocated(raw);
    expect(got.dataBytes).toBeLessThan(data + 8 * 2 * MiB);
    if (which === 'holes') {
      expect(got.dataBytes).toBeLessThan(size / 2);
      // Grains and clusters that follow each other come as extents of up to 1 MiB, not one by one.
      expect(got.dataExtents).toBeLessThanOrEqual(Math.ceil(got.dataBytes / MAX_CHUNK) + 12);
    }
  });

  it('the raw itself reads back as raw with its holes', async () => {
    const raw = raws[which]!;
    const got = await readFile(raw);
    expect(got.format).toBe('raw');
    expect(got.virtualSize).toBe(fs.statSync(raw).size);
    expect(got.sha256).toBe(rawDigest(raw, got.virtualSize));
    expect(got.dataBytes).toBe(await allocated(raw));
  });
});

describe("images written by amibundle's own writers", () => {
  it.each(['qcow2', 'vmdk', 'vhd', 'vhd-fixed'] as DiskFormat[])(
    '%s reads back as the raw',
    async (format) => {
      const raw = raws['holes']!;
      const dir = fs.mkdtempSync(path.join(tmp.dir, `own-${format}-`));
      const size = fs.statSync(raw).size;
      const fd = fs.openSync(raw, 'r');
      const extents = await dataExtents(fd, size);
      const sink = createImageSink(format, dir, {
        name: 'disk',
        mode: 0o600,
        mtime: 0,
        size,
        sparseMap: extents,
      });
      await sink.open();
      for (const e of extents) {
        const buf = Buffer.alloc(e.length);
        fs.readSync(fd, buf, 0, e.length, e.offset);
        await sink.write(e.offset, buf);
      }
      fs.closeSync(fd);
      const out = await sink.commit();
      const got = await readFile(out);
      expect(got.format).toBe(format);
      expect(got.virtualSize).toBe(virtualSize(out, QEMU_FORMAT[format as Exclude<DiskFormat, 'raw'>]));
      expect(got.sha256).toBe(rawDigest(raw, got.virtualSize));
    },
  );
});

/** The error opening and reading `file` ends in: a BundleError naming the file, one line. */
async function failure(file: string): Promise<BundleError> {
  let caught: unknown;
  try {
    await readFile(file);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(BundleError);
  const e = caught as BundleError;
  expect(e.message).toContain(file);
  expect(e.message).not.toContain('\n');
  return e;
}

describe('refused and broken images', () => {
  it('a qcow2 with a backing file', async () => {
    const base = path.join(tmp.dir, 'base.qcow2');
    const child = path.join(tmp.dir, 'child.qcow2');
    qemu(['convert', '-f', 'raw', '-O', 'qcow2', raws['holes']!, base]);
    qemu(['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', child]);
    expect((await failure(child)).message).toMatch(/backing file/);
  });

  it('a qcow2 compressed with zstd', async () => {
    const out = path.join(tmp.dir, 'zstd.qcow2');
    qemu(['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd', raws['holes']!, out]);
    expect((await failure(out)).message).toMatch(/zstd; only deflate/);
  });

  it('an encrypted qcow2', async () => {
    const out = path.join(tmp.dir, 'luks.qcow2');
    const create = (): ReturnType<typeof qemuImg> => {
      fs.rmSync(out, { force: true });
      return qemuImg([
        'create',
        '-q',
        '--object',
        'secret,id=s0,data=hunter2',
        '-f',
        'qcow2',
        '-o',
        'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10',
        out,
        '4M',
      ]);
    };
    // qemu-img times PBKDF2 by the thread's CPU clock to pick the LUKS iteration count, and gives
    // up when a timing loop reads 0 ms (4 creates in 20 here, and once a CI run): try again.
    let r = create();
    for (let attempt = 1; attempt < 10 && r.code !== 0 && /accurate CPU usage/.test(r.stderr); attempt++)
      r = create();
    expect(r.code, r.stderr).toBe(0);
    expect((await failure(out)).message).toMatch(/encrypted/);
  });

  it('a qcow2 with an external data file', async () => {
    const out = path.join(tmp.dir, 'external.qcow2');
    qemu(['create', '-q', '-f', 'qcow2', '-o', `data_file=${out}.data`, out, '4M']);
    expect((await failure(out)).message).toMatch(/external data file/);
  });

  it('a qcow2 with unknown incompatible features, and one marked corrupt', async () => {
    const src = path.join(tmp.dir, 'features.qcow2');
    qemu(['convert', '-f', 'raw', '-O', 'qcow2', raws['holes']!, src]);
    const bytes = fs.readFileSync(src);
    const unknown = Buffer.from(bytes);
    unknown.writeBigUInt64BE(1n << 40n, 72);
    fs.writeFileSync(`${src}.unknown`, unknown);
    expect((await failure(`${src}.unknown`)).message).toMatch(/incompatible features .*0x10000000000/);
    const corrupt = Buffer.from(bytes);
    corrupt.writeBigUInt64BE(2n, 72);
    fs.writeFileSync(`${src}.corrupt`, corrupt);
    expect((await failure(`${src}.corrupt`)).message).toMatch(/marked corrupt/);
  });

  it('a differencing VHD', async () => {
    const src = path.join(tmp.dir, 'dynamic.vhd');
    qemu(['convert', '-f', 'raw', '-O', 'vpc', raws['holes']!, src]);
    const bytes = fs.readFileSync(src);
    // The disk type in both footers becomes differencing (4), checksums made good again.
    for (const at of [0, bytes.length - 512]) {
      const footer = bytes.subarray(at, at + 512);
      footer.writeUInt32BE(4, 60);
      footer.writeUInt32BE(0, 64);
      let sum = 0;
      for (const b of footer) sum += b;
      footer.writeUInt32BE(~sum >>> 0, 64);
    }
    const diff = path.join(tmp.dir, 'differencing.vhd');
    fs.writeFileSync(diff, bytes);
    expect((await failure(diff)).message).toMatch(/differencing disk/);
  });

  it('a VMDK descriptor file, a split VMDK and a VHDX', async () => {
    const flat = path.join(tmp.dir, 'flat.vmdk');
    qemu(['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', raws['holes']!, flat]);
    expect((await failure(flat)).message).toMatch(/VMDK descriptor file/);
    const split = path.join(tmp.dir, 'split.vmdk');
    qemu([
      'convert',
      '-f',
      'raw',
      '-O',
      'vmdk',
      '-o',
      'subformat=twoGbMaxExtentSparse',
      raws['holes']!,
      split,
    ]);
    expect((await failure(split)).message).toMatch(/VMDK descriptor file/);
    expect((await failure(path.join(tmp.dir, 'split-s001.vmdk'))).message).toMatch(/no embedded descriptor/);
    const vhdx = path.join(tmp.dir, 'disk.vhdx');
    qemu(['convert', '-f', 'raw', '-O', 'vhdx', raws['holes']!, vhdx]);
    expect((await failure(vhdx)).message).toMatch(/VHDX/);
  });

  it.each([
    ['qcow2', ['-O', 'qcow2']],
    ['compressed qcow2', ['-c', '-O', 'qcow2']],
    ['monolithicSparse VMDK', ['-O', 'vmdk']],
    ['streamOptimized VMDK', ['-O', 'vmdk', '-o', 'subformat=streamOptimized']],
    ['dynamic VHD', ['-O', 'vpc']],
  ])('a truncated %s is an error, never a short image', async (name, args) => {
    const src = path.join(tmp.dir, `whole-${name.replace(/\W+/g, '-')}`);
    qemu(['convert', '-f', 'raw', ...args, raws['holes']!, src]);
    const bytes = fs.readFileSync(src);
    for (const fraction of [0.3, 0.6, 0.95]) {
      const cut = `${src}.cut`;
      fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * fraction)));
      expect((await failure(cut)).message).toMatch(/truncated/);
    }
  });

  it('corrupted tables: a cluster past the end, absurd sizes', async () => {
    const q = path.join(tmp.dir, 'tables.qcow2');
    qemu(['convert', '-f', 'raw', '-O', 'qcow2', raws['holes']!, q]);
    const bytes = fs.readFileSync(q);
    const l1 = Number(bytes.readBigUInt64BE(40));
    const edits: [string, (b: Buffer) => void, RegExp][] = [
      ['cluster bits', (b) => b.writeUInt32BE(31, 20), /cluster_bits 31/],
      ['L1 too small', (b) => b.writeUInt32BE(0, 36), /L1 table has 0 entries/],
      ['huge size', (b) => b.writeBigUInt64BE(1n << 52n, 24), /L1 table/],
      ['L2 past the end', (b) => b.writeBigUInt64BE((1n << 63n) | (1n << 40n), l1), /past the end/],
      ['L2 unaligned', (b) => b.writeBigUInt64BE(BigInt(bytes.length - 512), l1), /not cluster-aligned/],
    ];
    for (const [name, edit, pattern] of edits) {
      const b = Buffer.from(bytes);
      edit(b);
      const f = `${q}.${name.replace(/\W+/g, '-')}`;
      fs.writeFileSync(f, b);
      expect((await failure(f)).message, name).toMatch(pattern);
    }
  });
});

describe('openDiskImage', () => {
  it('names a missing file with exit code 2', async () => {
    await expect(openDiskImage(path.join(tmp.dir, 'nope.img'))).rejects.toMatchObject({ exitCode: 2 });
  });
});
