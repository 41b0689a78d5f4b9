// Part and manifest files that are not regular files (FIFOs, links out of the bundle folder,
// directories) are refused by name, at once and in one line, by verify and unbundle: no hang on
// a FIFO, and no SHA-1 of whatever a link points at is ever printed.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { keysDir, tempDir } from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
const k = path.join(keysDir, 'user-key.pem');
const c = path.join(keysDir, 'user-cert.pem');
let good: string;

beforeAll(async () => {
  tmp = tempDir('hostile-files');
  good = path.join(tmp.dir, 'good');
  fs.mkdirSync(good);
  const image = path.join(tmp.dir, 'img');
  fs.writeFileSync(image, crypto.randomBytes(20_000));
  const b = await runCli('ec2-bundle-image', [
    ...['-i', image, '-d', good, '-k', k, '-c', c, '-u', '123456789012', '-r', 'x86_64', '--batch'],
    ...['--ec2cert', path.join(keysDir, 'ec2-cert.pem')],
  ]);
  expect(b.code, b.stderr).toBe(0);
});
afterAll(() => tmp.remove());

/** A copy of the good bundle, changed by `mutate`; returns its folder. */
function variant(label: string, mutate: (dir: string) => void): string {
  const dir = fs.mkdtempSync(path.join(tmp.dir, `${label}-`));
  const bundle = path.join(dir, 'bundle');
  fs.cpSync(good, bundle, { recursive: true });
  fs.mkdirSync(path.join(dir, 'dest'));
  mutate(bundle);
  return dir;
}

const sha1 = (data: Buffer): string => crypto.createHash('sha1').update(data).digest('hex');

async function expectRefused(
  dir: string,
  message: RegExp,
  forbidden: string[] = [],
  code = 254,
): Promise<void> {
  const bundle = path.join(dir, 'bundle');
  const manifest = path.join(bundle, 'img.manifest.xml');
  const runs = [
    await runCli('amibundle', ['verify', '-m', manifest, '-k', k, '-s', bundle], { timeoutMs: 20_000 }),
    await runCli('ec2-unbundle', ['-m', manifest, '-k', k, '-s', bundle, '-d', path.join(dir, 'dest')], {
      timeoutMs: 20_000,
    }),
  ];
  for (const r of runs) {
    // A hang is killed by the timeout (SIGKILL: code -1), which fails here.
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    for (const f of forbidden) expect(r.stdout + r.stderr).not.toContain(f);
  }
  expect(fs.readdirSync(path.join(dir, 'dest'))).toEqual([]);
}

describe('non-regular bundle files', () => {
  it('a FIFO part is refused by name without hanging', async () => {
    const dir = variant('fifo-part', (b) => {
      fs.rmSync(path.join(b, 'img.part.0'));
      execFileSync('mkfifo', [path.join(b, 'img.part.0')]);
    });
    await expectRefused(dir, /part file .*img\.part\.0 is a FIFO, not a regular file/);
  });

  it('a part symlinked outside the folder is not followed, and its SHA-1 never printed', async () => {
    const outside = path.join(tmp.dir, 'secret');
    // The real part moved out: a link to it would pass every check if it were followed.
    fs.copyFileSync(path.join(good, 'img.part.0'), outside);
    const dir = variant('link-part', (b) => {
      fs.rmSync(path.join(b, 'img.part.0'));
      fs.symlinkSync(outside, path.join(b, 'img.part.0'));
    });
    await expectRefused(dir, /part file .*img\.part\.0 is a symbolic link, not a regular file/, [
      sha1(fs.readFileSync(outside)),
      'secret',
    ]);
  });

  it('a directory as a part is refused by name', async () => {
    const dir = variant('dir-part', (b) => {
      fs.rmSync(path.join(b, 'img.part.0'));
      fs.mkdirSync(path.join(b, 'img.part.0'));
    });
    await expectRefused(dir, /part file .*img\.part\.0 is a directory, not a regular file/);
  });

  it('a FIFO manifest is refused without hanging', async () => {
    const dir = variant('fifo-manifest', (b) => {
      fs.rmSync(path.join(b, 'img.manifest.xml'));
      execFileSync('mkfifo', [path.join(b, 'img.manifest.xml')]);
    });
    // The command line's own check of -m sees it first: exit 2, "not a file".
    await expectRefused(dir, /--manifest .*img\.manifest\.xml.*not a file/, [], 2);
  });

  it('a symlinked manifest is refused', async () => {
    const outside = path.join(tmp.dir, 'elsewhere.manifest.xml');
    fs.copyFileSync(path.join(good, 'img.manifest.xml'), outside);
    const dir = variant('link-manifest', (b) => {
      fs.rmSync(path.join(b, 'img.manifest.xml'));
      fs.symlinkSync(outside, path.join(b, 'img.manifest.xml'));
    });
    await expectRefused(dir, /manifest .*img\.manifest\.xml is a symbolic link, not a regular file/, [
      'elsewhere',
    ]);
  });

  it('upload-bundle refuses a symlinked part before sending anything, and prints no SHA-1 of its target', async () => {
    const outside = path.join(tmp.dir, 'secret-upload');
    fs.writeFileSync(outside, 'not a part\n');
    const dir = variant('link-upload', (b) => {
      fs.rmSync(path.join(b, 'img.part.0'));
      fs.symlinkSync(outside, path.join(b, 'img.part.0'));
    });
    const r = await runCli(
      'ec2-upload-bundle',
      [
        ...['-b', 'bucket', '-m', path.join(dir, 'bundle', 'img.manifest.xml')],
        ...['--url', 'http://127.0.0.1:9', '-a', 'AK', '-s', 'SK'],
      ],
      { timeoutMs: 20_000 },
    );
    expect(r.code, r.stderr).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/part file .*img\.part\.0 is a symbolic link, not a regular file/);
    expect(r.stdout + r.stderr).not.toContain(sha1(fs.readFileSync(outside)));
  });
});
