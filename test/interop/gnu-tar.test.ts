// Our tar stream must be byte-identical to what this machine's GNU tar writes with the options
// ec2-ami-tools uses (`tar -c -h -S --owner 0 --group 0`), for plain, sparse, huge and long-named
// files; and GNU tar must extract it to the same bytes.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tarOf } from '../support/tar-of.js';
import { tempDir } from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('gnutar');
});
afterAll(() => tmp.remove());

function gnuTar(dir: string, name: string): Buffer {
  return execFileSync('tar', ['-c', '-h', '-S', '--owner', '0', '--group', '0', '-C', dir, name], {
    maxBuffer: 1 << 30,
    env: { ...process.env, TAPE: '-' },
  });
}

/** A sparse file with `extents` 4 KiB data extents separated by 4 KiB holes, ending in a hole. */
function sparseFile(name: string, extents: number, tailHole = 8192): string {
  const file = path.join(tmp.dir, name);
  const fd = fs.openSync(file, 'w');
  for (let i = 0; i < extents; i++) {
    const block = crypto.createHash('sha256').update(`${name}:${i}`).digest();
    fs.writeSync(fd, Buffer.concat(Array.from({ length: 128 }, () => block)), 0, 4096, i * 8192 + 4096);
  }
  fs.ftruncateSync(fd, extents * 8192 + tailHole);
  fs.closeSync(fd);
  fs.utimesSync(file, 1400000000, 1400000000);
  fs.chmodSync(file, 0o644);
  return file;
}

function denseFile(name: string, size: number): string {
  const file = path.join(tmp.dir, name);
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 0xff;
  fs.writeFileSync(file, data);
  fs.utimesSync(file, 1500000000, 1500000000);
  return file;
}

async function expectSameAsGnuTar(file: string): Promise<void> {
  const ours = await tarOf(file);
  const theirs = gnuTar(path.dirname(file), path.basename(file));
  expect(ours.bytes.length).toBe(theirs.length);
  expect(ours.bytes.equals(theirs)).toBe(true);
  expect(ours.digest).toBe(crypto.createHash('sha1').update(theirs).digest('hex'));
}

describe('byte-identical to GNU tar', () => {
  for (const n of [0, 1, 4, 5, 25, 500])
    it(`sparse file with ${n} data extents`, async () => {
      await expectSameAsGnuTar(sparseFile(`sparse-${n}.img`, n));
    });
  it('sparse file ending in data', async () => {
    await expectSameAsGnuTar(sparseFile('tail-data.img', 3, 4096));
  });
  for (const size of [1, 511, 512, 513, 10240, 102733])
    it(`plain file of ${size} bytes`, async () => {
      await expectSameAsGnuTar(denseFile(`dense-${size}.img`, size));
    });
  it('a 150-character name (GNU long name record)', async () => {
    await expectSameAsGnuTar(denseFile(`${'long-name-'.repeat(15)}`, 1000));
  });
  it('a 9 GiB sparse image with 1 MiB of data (base-256 numbers)', async () => {
    const file = path.join(tmp.dir, 'nine-gib.img');
    const fd = fs.openSync(file, 'w');
    fs.writeSync(fd, crypto.randomBytes(1024 * 1024), 0, 1024 * 1024, 9 * 1024 ** 3 - 2 * 1024 * 1024);
    fs.ftruncateSync(fd, 9 * 1024 ** 3);
    fs.closeSync(fd);
    await expectSameAsGnuTar(file);
  });
});

describe('GNU tar extracts our stream', () => {
  it('sparse member round trip through tar -x', async () => {
    const file = sparseFile('extract-me.img', 25);
    const ours = await tarOf(file, 'fs', 'restored.img');
    const out = path.join(tmp.dir, 'x');
    fs.mkdirSync(out);
    execFileSync('tar', ['-x', '-C', out], { input: ours.bytes });
    expect(fs.readFileSync(path.join(out, 'restored.img')).equals(fs.readFileSync(file))).toBe(true);
  });
});
