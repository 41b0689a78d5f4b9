// writeFileAtomic, the one way amibundle writes a whole file: the final mode from the first
// moment, never clobbering unless asked, nothing left behind on failure, and its temporary name
// one that the stale-temporary sweep recognises (so a killed run's leftover is removed).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/io/atomic-file.js';
import { AmiError } from '../../src/errors.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atomic-file-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes the bytes with exactly the mode asked for, whatever the umask', async () => {
    const file = path.join(dir, 'key.pem');
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(file, 'secret', { mode: 0o640, overwrite: false });
    } finally {
      process.umask(old);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('secret');
    expect(fs.statSync(file).mode & 0o777).toBe(0o640);
    expect(fs.readdirSync(dir)).toEqual(['key.pem']);
  });

  it('lets the umask narrow the mode when asked (downloaded parts)', async () => {
    const file = path.join(dir, 'img.part.0');
    const old = process.umask(0o077);
    try {
      await writeFileAtomic(file, Buffer.alloc(10), { mode: 0o644, underUmask: true, overwrite: true });
    } finally {
      process.umask(old);
    }
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuses an existing name with exit 2 and leaves it and the directory as they were', async () => {
    const file = path.join(dir, 'taken');
    fs.writeFileSync(file, 'old');
    const err = await writeFileAtomic(
      file,
      'new',
      { mode: 0o600, overwrite: false },
      'pass --force',
      'key',
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmiError);
    expect((err as AmiError).exitCode).toBe(2);
    expect((err as AmiError).message).toBe(`the key ${file} already exists`);
    expect(fs.readFileSync(file, 'utf8')).toBe('old');
    expect(fs.readdirSync(dir)).toEqual(['taken']);
  });

  it('replaces an existing file when overwrite is set', async () => {
    const file = path.join(dir, 'm.manifest.xml');
    fs.writeFileSync(file, 'old');
    await writeFileAtomic(file, 'new', { mode: 0o644, overwrite: true });
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
    expect(fs.readdirSync(dir)).toEqual(['m.manifest.xml']);
  });

  it('uses an owned temporary name, so a leftover is swept by the next run', async () => {
    // A directory under the final name makes the rename fail after the temporary is written.
    const file = path.join(dir, 'img.part.1');
    fs.mkdirSync(path.join(file, 'x'), { recursive: true });
    const seen: string[] = [];
    const watcher = fs.watch(dir, (_event, name) => {
      if (name) seen.push(name);
    });
    try {
      await expect(writeFileAtomic(file, 'data', { mode: 0o644, overwrite: true })).rejects.toThrow();
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      watcher.close();
    }
    expect(fs.readdirSync(dir)).toEqual(['img.part.1']);
    const temp = seen.find((n) => n !== 'img.part.1');
    expect(temp).toMatch(/^\.img\.part\.1\.amibundle-\d+-\d*-[0-9a-f]*-[0-9a-f]{8}\.tmp$/);
  });
});
