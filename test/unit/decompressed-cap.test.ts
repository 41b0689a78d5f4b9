// A bundle whose compressed stream inflates to far more than its manifest declares is refused as
// soon as the tar stream passes what an image of that size can need (maxTarStreamBytes), not
// after everything has been inflated. Counted in bytes pushed by the decompressor, never in time.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ParallelGunzip } from '../../src/codec/parallel-gunzip.js';
import { SingleMemberGunzip } from '../../src/codec/single-member-gunzip.js';
import { BundleError } from '../../src/errors.js';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { BLOCK } from '../../src/format/tar-header.js';
import { writeTarNumber } from '../../src/format/tar-number.js';
import { maxTarStreamBytes, TarMemberReader } from '../../src/format/tar-reader.js';
import { DirPartSource } from '../../src/parts/dir-part-source.js';
import { restoreBundle } from '../../src/restore/restore.js';
import { craftBundle } from '../support/craft-bundle.js';
import { key, tempDir } from '../support/fixtures.js';
import { ended, fixChecksum, plainMember, rawHeader } from '../support/tar-blocks.js';

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('cap');
});
afterAll(() => tmp.remove());
afterEach(() => vi.restoreAllMocks());

/** Restores `tar` crafted as a bundle declaring `size`; returns the error and the bytes counted. */
async function restoreCounting(
  label: string,
  tar: Buffer,
  size: number,
): Promise<{ err: unknown; inflated: number; largestChunk: number; read: number }> {
  const dir = fs.mkdtempSync(path.join(tmp.dir, `${label}-`));
  const manifest = craftBundle(dir, 'img', tar, { size });
  const dest = path.join(dir, 'dest');
  fs.mkdirSync(dest);
  let inflated = 0;
  let largestChunk = 0;
  let read = 0;
  for (const cls of [ParallelGunzip, SingleMemberGunzip]) {
    const push = Reflect.get(cls.prototype, 'push') as (this: unknown, ...args: unknown[]) => boolean;
    vi.spyOn(cls.prototype, 'push').mockImplementation(function (
      this: unknown,
      chunk: unknown,
      enc?: unknown,
    ) {
      if (Buffer.isBuffer(chunk)) {
        inflated += chunk.length;
        largestChunk = Math.max(largestChunk, chunk.length);
      }
      return push.call(this, chunk, enc);
    });
  }
  const write: (this: TarMemberReader, c: Buffer) => Promise<void> = Reflect.get(
    TarMemberReader.prototype,
    'write',
  );
  vi.spyOn(TarMemberReader.prototype, 'write').mockImplementation(function (
    this: TarMemberReader,
    c: Buffer,
  ) {
    read += c.length;
    return write.call(this, c);
  });
  const err = await restoreBundle({
    manifest: parseManifest(fs.readFileSync(manifest)),
    source: new DirPartSource(dir),
    privateKeyPem: key('user-key.pem'),
    destination: dest,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  // Refused: nothing left in the destination; restored: the image alone.
  expect(fs.readdirSync(dest)).toEqual(err === undefined ? ['img'] : []);
  return { err, inflated, largestChunk, read };
}

describe('the decompressed total is capped by the manifest', () => {
  it('maxTarStreamBytes: the formula for a 4 KiB image', () => {
    // 64 KiB metadata + header + 195 extension blocks + data + padding + end marker + one record.
    expect(maxTarStreamBytes(4096)).toBe(65536 + 512 + 195 * 512 + 4096 + 511 + 1024 + 10240);
  });

  it('a sparse map of millions of extents for a 4 KiB image stops near the ceiling', async () => {
    const size = 4096;
    // A member header claiming 8 GiB stored, then 40 000 full extension blocks of one-byte extents.
    const head = rawHeader('S', 2 ** 33, 'img');
    for (let i = 0; i < 4; i++) {
      writeTarNumber(head, 386 + i * 24, 12, i * 2);
      writeTarNumber(head, 386 + i * 24 + 12, 12, 1);
    }
    writeTarNumber(head, 483, 12, 2 ** 34);
    head[482] = 1;
    fixChecksum(head);
    const blocks = 40_000;
    const ext = Buffer.alloc(blocks * BLOCK);
    let offset = 8;
    for (let b = 0; b < blocks; b++) {
      for (let i = 0; i < 21; i++, offset += 2) {
        writeTarNumber(ext, b * BLOCK + i * 24, 12, offset);
        writeTarNumber(ext, b * BLOCK + i * 24 + 12, 12, 1);
      }
      if (b < blocks - 1) ext[b * BLOCK + 504] = 1;
    }
    const tar = Buffer.concat([head, ext]);
    const r = await restoreCounting('sparse', tar, size);
    expect(r.err).toBeInstanceOf(BundleError);
    expect((r.err as Error).message).toMatch(/decompressed bundle exceeds \d+ bytes/);
    const ceiling = maxTarStreamBytes(size);
    expect(r.read).toBeLessThanOrEqual(ceiling);
    expect(r.inflated).toBeLessThan(ceiling + 8 * r.largestChunk);
    expect(r.inflated).toBeLessThan(tar.length / 4);
  });

  it('64 MiB of zeros after the end marker stop after one record', async () => {
    const size = 100_000;
    const tar = Buffer.concat([ended(plainMember('img', size)), Buffer.alloc(64 * 1024 * 1024)]);
    const r = await restoreCounting('zeros', tar, size);
    expect(r.err).toBeInstanceOf(BundleError);
    expect((r.err as Error).message).toMatch(
      /zeros after the end of the tar archive|decompressed bundle exceeds/,
    );
    const ceiling = maxTarStreamBytes(size);
    expect(r.read).toBeLessThanOrEqual(ceiling + r.largestChunk);
    expect(r.inflated).toBeLessThan(ceiling + 8 * r.largestChunk);
  });

  it('a bundle at the ceiling still restores', async () => {
    const size = 100_000;
    // The member, the end marker, then one full record of zeros: the most the reader accepts.
    const withRecord = Buffer.concat([plainMember('img', size), Buffer.alloc(1024 + 10240)]);
    const r = await restoreCounting('ok', withRecord, size);
    expect(r.err).toBeUndefined();
    expect(r.read).toBe(withRecord.length);
  });
});
