// Control characters from manifests are refused by the reader; anything printed is escaped.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { printable, printableJson } from '../../src/printable.js';
import { bundledCases } from '../support/fixtures.js';

const c = bundledCases().find((x) => x.case === 'a-tiny')!;
const tiny = fs.readFileSync(path.join(c.dir, c.expected!.manifest_file), 'utf8');

describe('printable', () => {
  it('escapes C0 (but TAB), DEL, C1 and bidi overrides; keeps the rest', () => {
    expect(printable('a\u001b[31mb\u0007c\u007f\u009bd\u202ee\tf')).toBe(
      'a\\x1b[31mb\\x07c\\x7f\\x9bd\\u202ee\tf',
    );
    expect(printable('line\nnext\r')).toBe('line\\x0anext\\x0d');
    expect(printable('ünïcode ✓ 名前')).toBe('ünïcode ✓ 名前');
    expect(printableJson(JSON.stringify({ a: '\u009b\u001b' }))).toBe('{"a":"\\u009b\\u001b"}');
    expect(JSON.parse(printableJson(JSON.stringify({ a: '\u009bx' })))).toEqual({ a: '\u009bx' });
  });
});

describe('the reader refuses control characters in any manifest string', () => {
  const cases: [string, string, RegExp][] = [
    ['raw ESC in the name', tiny.replace(/tiny\.img/g, 'tiny\u001b[2J.img'), /control character U\+001B/],
    ['raw BEL in the name', tiny.replace(/tiny\.img/g, 'tiny\u0007.img'), /control character U\+0007/],
    [
      'BEL in a part name',
      tiny.replace('tiny.img.part.0', 'tiny.img.part.0\u0007'),
      /control character U\+0007/,
    ],
    ['DEL in the user', tiny.replace('<user>123456789012', '<user>123456789012\u007f'), /U\+007F/],
    [
      'C1 CSI in the architecture',
      tiny.replace('<architecture>x86_64', '<architecture>x86_64\u009b'),
      /U\+009B/,
    ],
    [
      'raw TAB inside a value',
      tiny.replace('<user>1234', '<user>12\t34'),
      /image\.user holds the control character U\+0009/,
    ],
  ];
  for (const [label, doc, message] of cases)
    it(label, () => {
      expect(doc).not.toBe(tiny);
      expect(() => parseManifest(doc)).toThrow(message);
    });
  it('character references never yield a control character in a value', () => {
    for (const ref of ['&#27;', '&#x1b;', '&#7;', '&#9;', '&#10;', '&#x9b;', '&#127;']) {
      const doc = tiny.replace('<user>1234', `<user>12${ref}34`);
      let values: string;
      try {
        values = JSON.stringify(parseManifest(doc).manifest);
      } catch (err) {
        expect((err as Error).message, ref).toMatch(/control character/);
        continue;
      }
      expect(values, ref).not.toMatch(/\\u00[01][0-9a-f]|[\u007f-\u009f]/);
    }
  });

  it('whitespace between elements is still fine', () => {
    expect(parseManifest(tiny.replace('<image>', '\n\t<image>')).manifest.image.name).toBe('tiny.img');
  });
});
