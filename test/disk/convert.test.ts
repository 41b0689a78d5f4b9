// `amibundle convert IN OUT` as a user runs it: every format qemu-img writes (qcow2, VMDK
// streamOptimized, dynamic and fixed VHD, raw) converted into every --format amibundle writes,
// judged by `qemu-img compare` against the raw it all came from and `qemu-img check`; holes stay
// holes; the output format follows OUT's name when --format is absent; a refused image or a bad
// command line leaves nothing behind and says why in one line.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiskFormat } from '../../src/disk/image-sink.js';
import { runCli } from '../support/cli.js';
import { projectRoot, tempDir } from '../support/fixtures.js';
import { expectCheckClean, expectSameAsRaw, qemuImg } from './qemu.js';

const MiB = 1024 * 1024;
let tmp: { dir: string; remove: () => void };
let raw: string;

function qemu(args: string[]): void {
  const r = qemuImg(args);
  expect(r.code, r.stderr).toBe(0);
}

beforeAll(() => {
  tmp = tempDir('convert');
  // ext4 with the project's sources, then random data written over a hole and into the last byte.
  raw = path.join(tmp.dir, 'disk.raw');
  execFileSync('truncate', ['-s', '24M', raw]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', path.join(projectRoot, 'src'), raw], { stdio: 'ignore' });
  const fd = fs.openSync(raw, 'r+');
  fs.writeSync(fd, crypto.randomBytes(MiB + 1234), 0, MiB + 1234, 17 * MiB + 99);
  fs.writeSync(fd, Buffer.from([0xa5]), 0, 1, 24 * MiB - 1);
  fs.closeSync(fd);
}, 120_000);
afterAll(() => tmp.remove());

const INPUTS = [
  { name: 'raw', args: null },
  { name: 'qcow2', args: ['-O', 'qcow2'] },
  { name: 'compressed-qcow2', args: ['-c', '-O', 'qcow2', '-o', 'compat=0.10'] },
  { name: 'vmdk', args: ['-O', 'vmdk', '-o', 'subformat=streamOptimized'] },
  { name: 'vhd', args: ['-O', 'vpc', '-o', 'subformat=dynamic'] },
  { name: 'vhd-fixed', args: ['-O', 'vpc', '-o', 'subformat=fixed'] },
] as const;

const OUTPUTS: readonly DiskFormat[] = ['raw', 'qcow2', 'vmdk', 'vhd', 'vhd-fixed'];

describe.each(INPUTS)('convert from $name', ({ name, args }) => {
  let input: string;
  beforeAll(() => {
    input = path.join(tmp.dir, `in-${name}`);
    if (args) qemu(['convert', '-f', 'raw', ...args, raw, input]);
    else fs.copyFileSync(raw, input);
  });

  it.each(OUTPUTS)('to %s: qemu-img compare finds it identical to the raw', async (format) => {
    const dir = fs.mkdtempSync(path.join(tmp.dir, `out-${name}-${format}-`));
    const out = path.join(dir, 'converted.img');
    const r = await runCli('amibundle', ['convert', input, out, '--format', format]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(dir)).toEqual(['converted.img']);
    if (format === 'raw') {
      // A VHD's size is rounded up to its geometry: the copy may end in more zeros than the raw.
      const c = qemuImg(['compare', '-f', 'raw', raw, '-F', 'raw', out]);
      expect(c.stdout, c.stderr).toContain('Images are identical.');
      // Holes kept: the ext4 image is mostly empty, so is the copy.
      expect(fs.statSync(out).blocks * 512).toBeLessThan(fs.statSync(raw).size / 2);
    } else {
      expectCheckClean(format, out);
      expectSameAsRaw(format, raw, out);
    }
  });
});

describe('convert, the command line', () => {
  let qcow2: string;
  beforeAll(() => {
    qcow2 = path.join(tmp.dir, 'cli.qcow2');
    qemu(['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  });

  it("takes the format from OUT's name when --format is absent", async () => {
    for (const [file, format, magic] of [
      ['named.vmdk', 'vmdk', 'KDMV'],
      ['named.vhd', 'vhd', 'conectix'],
      ['named.qcow2', 'qcow2', 'QFI\xfb'],
    ] as const) {
      const out = path.join(tmp.dir, file);
      const r = await runCli('amibundle', ['convert', qcow2, out]);
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readFileSync(out).subarray(0, magic.length).toString('latin1')).toBe(magic);
      expectSameAsRaw(format, raw, out);
    }
    const out = path.join(tmp.dir, 'named.img');
    expect((await runCli('amibundle', ['convert', qcow2, out])).code).toBe(0);
    expect(execFileSync('cmp', [raw, out]).length).toBe(0);
  });

  it('reports a done event with both formats in --json', async () => {
    const out = path.join(tmp.dir, 'json.vhd');
    const r = await runCli('amibundle', ['convert', qcow2, out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const done = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e['type'] === 'done');
    expect(done).toMatchObject({
      command: 'convert',
      ok: true,
      inputFormat: 'qcow2',
      format: 'vhd',
      virtualSize: 24 * MiB,
    });
  });

  it('refuses a qcow2 with a backing file in one line, exit 254, nothing left behind', async () => {
    const child = path.join(tmp.dir, 'child.qcow2');
    qemu(['create', '-q', '-f', 'qcow2', '-b', qcow2, '-F', 'qcow2', child]);
    const dir = fs.mkdtempSync(path.join(tmp.dir, 'refused-'));
    const r = await runCli('amibundle', ['convert', child, path.join(dir, 'out.raw')]);
    expect(r.code).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(child);
    expect(r.stderr).toMatch(/backing file/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a truncated image fails and leaves no output', async () => {
    const cut = path.join(tmp.dir, 'cut.qcow2');
    const bytes = fs.readFileSync(qcow2);
    fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.7)));
    const dir = fs.mkdtempSync(path.join(tmp.dir, 'cut-'));
    const r = await runCli('amibundle', ['convert', cut, path.join(dir, 'out.vmdk')]);
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/truncated/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('bad command lines: missing IN (exit 2), one argument, IN as OUT, an unknown format (exit 1)', async () => {
    expect((await runCli('amibundle', ['convert', path.join(tmp.dir, 'absent'), 'x.raw'])).code).toBe(2);
    expect((await runCli('amibundle', ['convert', qcow2])).code).toBe(1);
    const same = await runCli('amibundle', ['convert', qcow2, qcow2]);
    expect(same.code).toBe(1);
    expect(same.stderr).toMatch(/same file/);
    expect((await runCli('amibundle', ['convert', qcow2, 'x', '--format', 'vdi'])).code).toBe(1);
    expect(fs.existsSync(path.join(projectRoot, 'x'))).toBe(false);
  });
});
