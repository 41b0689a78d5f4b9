// Property tests of the disk image readers: images qemu-img writes in every format and subformat
// (and amibundle's own qcow2), mutated near their headers, with table words overwritten anywhere,
// and random bytes behind each magic number. Every input ends in a BundleError naming the file,
// or in a stream of extents that keeps the contract (ascending, contiguous, data of at most
// MAX_CHUNK, up to the virtual size) within the deadline, never a crash, a hang or a huge
// allocation. Reading is capped at a budget so a crafted size cannot make the test itself slow.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CHUNK, openDiskImage } from '../../src/disk/read/detect.js';
import { createImageSink } from '../../src/disk/create-sink.js';
import { qemuImg } from '../disk/qemu.js';
import { labelled, mutated, outcome, params, runs, sandbox, timeoutFor } from './fuzz-support.js';

let box: { dir: string; done: () => void };
const seeds: Record<string, Buffer> = {};

/** Data handed out before the property stops reading (holes cost nothing and are not counted). */
const DATA_BUDGET = 64 * 1024 * 1024;
/** Heap growth allowed while reading one input: far above the readers' tables for these seeds. */
const HEAP_BUDGET = 256 * 1024 * 1024;

beforeAll(async () => {
  box = sandbox('disk-readers');
  // A small raw disk: data at the start, a hole, data across a 64 KiB boundary, a hole, the end.
  const raw = path.join(box.dir, 'seed.raw');
  const fd = fs.openSync(raw, 'w');
  fs.writeSync(fd, crypto.randomBytes(70_000), 0, 70_000, 0);
  fs.writeSync(fd, Buffer.alloc(4096, 0x33), 0, 4096, 1024 * 1024 - 100);
  fs.ftruncateSync(fd, 3 * 1024 * 1024 - 512);
  fs.closeSync(fd);
  const targets: Record<string, string[]> = {
    'qcow2 v2': ['-O', 'qcow2', '-o', 'compat=0.10,cluster_size=4096'],
    'qcow2 v3': ['-O', 'qcow2', '-o', 'cluster_size=4096'],
    'qcow2 compressed': ['-c', '-O', 'qcow2', '-o', 'cluster_size=4096'],
    'vmdk sparse': ['-O', 'vmdk'],
    'vmdk stream': ['-O', 'vmdk', '-o', 'subformat=streamOptimized'],
    'vhd dynamic': ['-O', 'vpc', '-o', 'subformat=dynamic'],
    'vhd fixed': ['-O', 'vpc', '-o', 'subformat=fixed'],
  };
  for (const [name, args] of Object.entries(targets)) {
    const out = path.join(box.dir, 'seed.out');
    const r = qemuImg(['convert', '-f', 'raw', ...args, raw, out]);
    expect(r.code, r.stderr).toBe(0);
    seeds[name] = fs.readFileSync(out);
    fs.rmSync(out);
  }
  // amibundle's own streamOptimized VMDK (one grain table per 32 MiB, markers everywhere).
  const data = fs.readFileSync(raw);
  const sink = createImageSink('vmdk', box.dir, { name: 'own', mode: 0o600, mtime: 0, size: data.length });
  await sink.open();
  await sink.write(0, data);
  const own = await sink.commit();
  seeds['amibundle vmdk'] = fs.readFileSync(own);
  fs.rmSync(own);
  fs.rmSync(raw);
}, 120_000);
afterAll(() => box.done());

/** A broken promise of the reader: a plain Error, so the property fails. */
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`disk reader: ${what}`);
}

/** Reads `bytes` as an image file, checking the extent contract; returns what it found. */
async function readImage(bytes: Buffer): Promise<{ format: string; dataBytes: number }> {
  const file = path.join(box.dir, 'image');
  fs.writeFileSync(file, bytes);
  const heapBefore = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  try {
    const image = await openDiskImage(file);
    try {
      check(Number.isSafeInteger(image.virtualSize) && image.virtualSize >= 0, 'virtual size');
      let at = 0;
      let dataBytes = 0;
      let lastHole = false;
      for await (const e of image.extents()) {
        check(e.offset === at, `extent at ${e.offset}, expected ${at}`);
        check(e.length > 0 && e.offset + e.length <= image.virtualSize, 'extent length');
        if (e.data) {
          check(e.data.length === e.length && e.length <= MAX_CHUNK, 'data length');
          dataBytes += e.length;
          lastHole = false;
        } else {
          check(!lastHole, 'two holes in a row');
          lastHole = true;
        }
        at += e.length;
        const heap = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers - heapBefore;
        check(heap < HEAP_BUDGET, `heap grew by ${heap} bytes`);
        if (dataBytes > DATA_BUDGET) return { format: image.format, dataBytes };
      }
      check(at === image.virtualSize, 'extents stop short of the virtual size');
      return { format: image.format, dataBytes };
    } finally {
      await image.close();
    }
  } finally {
    fs.rmSync(file);
  }
}

/** What a failure must look like: one line naming the file. */
async function property(bytes: Buffer): Promise<void> {
  const r = await outcome('disk reader', () => readImage(bytes));
  if (!r.ok) {
    expect(r.error.message).toContain(path.join(box.dir, 'image'));
    expect(r.error.message).not.toContain('\n');
  }
}

/** Overwrites of one 4- or 8-byte word anywhere: table entries, sizes and offsets made hostile. */
function wordEdits(seed: Buffer): fc.Arbitrary<Buffer> {
  const value = fc.oneof(
    fc.constantFrom(0n, 1n, 0xffffffffn, 0xffffffffffffffffn, BigInt(seed.length), BigInt(seed.length * 2)),
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    fc.bigInt({ min: 0n, max: BigInt(seed.length) }),
  );
  const edit = fc.record({ at: fc.nat(), wide: fc.boolean(), value, bigEndian: fc.boolean() });
  return fc.array(edit, { minLength: 1, maxLength: 3 }).map((edits) => {
    const out = Buffer.from(seed);
    for (const e of edits) {
      const width = e.wide ? 8 : 4;
      const at = (e.at % Math.max(1, out.length - width)) & ~3;
      if (e.wide) {
        if (e.bigEndian) out.writeBigUInt64BE(e.value, at);
        else out.writeBigUInt64LE(e.value, at);
      } else {
        const v = Number(e.value & 0xffffffffn);
        if (e.bigEndian) out.writeUInt32BE(v, at);
        else out.writeUInt32LE(v, at);
      }
    }
    return labelled(
      out,
      JSON.stringify(edits, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v)),
    );
  });
}

describe('disk readers under mutation', () => {
  it('every seed reads back cleanly as its format', async () => {
    const expected: Record<string, string> = {
      'qcow2 v2': 'qcow2',
      'qcow2 v3': 'qcow2',
      'qcow2 compressed': 'qcow2',
      'vmdk sparse': 'vmdk',
      'vmdk stream': 'vmdk',
      'vhd dynamic': 'vhd',
      'vhd fixed': 'vhd-fixed',
      'amibundle vmdk': 'vmdk',
    };
    for (const [name, seed] of Object.entries(seeds)) {
      const r = await readImage(seed);
      expect(r.format, name).toBe(expected[name]);
      expect(r.dataBytes, name).toBeGreaterThan(70_000);
    }
  });

  const n = runs(40);
  for (const name of [
    'qcow2 v2',
    'qcow2 v3',
    'qcow2 compressed',
    'vmdk sparse',
    'vmdk stream',
    'vhd dynamic',
    'vhd fixed',
    'amibundle vmdk',
  ]) {
    it(
      `${name}: mutated bytes end in a clear error or a well-formed read`,
      async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.constant(null).chain(() => mutated(seeds[name]!)),
            (bytes) => property(bytes),
          ),
          params(40),
        );
      },
      timeoutFor(n),
    );

    it(
      `${name}: overwritten table words end in a clear error or a well-formed read`,
      async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.constant(null).chain(() => wordEdits(seeds[name]!)),
            (bytes) => property(bytes),
          ),
          params(40),
        );
      },
      timeoutFor(n),
    );
  }

  it(
    'random bytes behind each magic number end in a clear error or a well-formed read',
    async () => {
      const magic = fc.constantFrom(
        Buffer.from('QFI\xfb\0\0\0\x03', 'latin1'),
        Buffer.from('QFI\xfb\0\0\0\x02', 'latin1'),
        Buffer.from('KDMV\x03\0\0\0', 'latin1'),
        Buffer.from('KDMV\x01\0\0\0', 'latin1'),
        Buffer.from('conectix', 'latin1'),
      );
      await fc.assert(
        fc.asyncProperty(magic, fc.uint8Array({ maxLength: 70_000 }), (m, rest) =>
          property(labelled(Buffer.concat([m, Buffer.from(rest)]), m.toString('latin1'))),
        ),
        params(60),
      );
    },
    timeoutFor(runs(60)),
  );
});
