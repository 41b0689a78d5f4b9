// Part names a bundle may have: NAME.part.N for the manifest's own name (or its file's NAME),
// N the index unpadded, in 2 digits or padded to the count's width; nothing else.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { isPartName, manifestBase } from '../../src/format/part-name.js';
import { craftBundle, tarOfMembers } from '../support/craft-bundle.js';

describe('isPartName', () => {
  it('accepts the names bundlers write', () => {
    expect(isPartName('x.part.0', 'x', 0, 1)).toBe(true);
    expect(isPartName('x.part.07', 'x', 7, 10)).toBe(true);
    expect(isPartName('x.part.7', 'x', 7, 10)).toBe(true);
    expect(isPartName('x.part.07', 'x', 7, 9)).toBe(true);
    expect(isPartName('x.part.0007', 'x', 7, 1000)).toBe(true);
    expect(isPartName('x.y.part.1', 'x.y', 1, 2)).toBe(true);
  });
  it('refuses anything else', () => {
    for (const [name, index, count] of [
      ['x.part.1', 0, 2],
      ['x.part.007', 7, 10],
      ['y.part.0', 0, 1],
      ['x.part.', 0, 1],
      ['x.part.0 ', 0, 1],
      ['x.part.+0', 0, 1],
      ['x.part.0x0', 0, 1],
      ['.profile', 0, 1],
      ['x.part.٠', 0, 1],
    ] as const)
      expect(isPartName(name, 'x', index, count), name).toBe(false);
  });
  it('manifestBase is NAME of NAME.manifest.xml only', () => {
    expect(manifestBase('img.manifest.xml')).toBe('img');
    expect(manifestBase('.manifest.xml')).toBeUndefined();
    expect(manifestBase('img.xml')).toBeUndefined();
  });
});

describe('the reader checks part names against the manifest name or its file name', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'part-names-'));
  const tar = tarOfMembers([{ info: { name: 'img', mode: 0o644, mtime: 0, size: 1024 } }]);
  it('parts named after the manifest file are accepted only when its name is given', () => {
    const file = craftBundle(dir, 'img', tar, { partNames: () => 'renamed.part.0' });
    const raw = fs.readFileSync(file);
    expect(() => parseManifest(raw)).toThrow(/part 0 is named 'renamed\.part\.0', not img\.part\.0/);
    expect(() => parseManifest(raw, 'other.manifest.xml')).toThrow(/part 0 is named/);
    expect(parseManifest(raw, 'renamed.manifest.xml').manifest.image.parts[0]!.filename).toBe(
      'renamed.part.0',
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
