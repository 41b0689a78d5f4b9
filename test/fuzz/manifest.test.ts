// Property tests of the manifest reader and of part names: the golden manifests mutated byte by
// byte and element by element, and random text, end in a BundleError or in a manifest whose parts
// and sizes are consistent; part names round-trip and sort in part order.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPartFileName, parseManifest } from '../../src/format/manifest-reader.js';
import {
  PART_SIZE,
  isPartName,
  manifestBase,
  manifestName,
  partCount,
  partName,
  partSuffixWidth,
} from '../../src/format/part-name.js';
import { bundledCases } from '../support/fixtures.js';
import {
  labelled,
  mutated,
  outcome,
  params,
  randomBytes,
  runs,
  sandbox,
  timeoutFor,
} from './fuzz-support.js';

// The readers under test, called through one line each so a change of signature is one edit here.
const readManifest = (raw: Buffer) => parseManifest(raw);
const checkPartName = (name: string) => checkPartFileName(name);
const isPartOf = (file: string, base: string, index: number, count: number) =>
  isPartName(file, base, index, count);
const baseOfManifest = (file: string) => manifestBase(file);

let box: { done: () => void };
beforeAll(() => {
  box = sandbox('manifest');
});
afterAll(() => box.done());

/** What an accepted manifest promises its users. */
function consistent(raw: Buffer): void {
  const parsed = readManifest(raw);
  const img = parsed.manifest.image;
  expect(img.parts.map((p) => p.index)).toEqual(img.parts.map((_, i) => i));
  for (const p of img.parts) {
    expect(checkPartName(p.filename)).toBe(p.filename);
    expect(p.digest).toMatch(/^[0-9a-f]{40}$/);
  }
  expect(new Set(img.parts.map((p) => p.filename)).size).toBe(img.parts.length);
  expect(Number.isSafeInteger(img.size) && img.size >= 0).toBe(true);
  expect(Number.isSafeInteger(img.bundledSize) && img.bundledSize >= 0).toBe(true);
  expect(img.digest).toMatch(/^[0-9a-fA-F]{40}$/);
  expect(img.name.length).toBeGreaterThan(0);
  expect(parsed.signedData.length).toBeLessThanOrEqual(raw.length);
}

const cases = bundledCases();
const manifests = cases.map((c) => ({
  c,
  raw: fs.readFileSync(path.join(c.dir, c.expected!.manifest_file)),
}));

/** Text likely to upset an XML reader or what uses its values. */
const hostileText = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom(
    '',
    '-1',
    '+1',
    '1e309',
    '9007199254740993',
    '0x10',
    ' 12 ',
    '&amp;',
    '&#0;',
    '&#x1b;[31m',
    '&lt;image&gt;',
    '../x',
    'a/b',
    '<x>',
    ']]>',
    '<![CDATA[x]]>',
    '\u0000',
  ),
);

/** Replaces the text of one element (the `which`-th `>text<`) with `text`. */
function replaceText(raw: Buffer, which: number, text: string): Buffer {
  const doc = raw.toString('utf8');
  const spots = [...doc.matchAll(/>([^<]*)</g)];
  if (spots.length === 0) return raw;
  const m = spots[which % spots.length]!;
  const start = m.index + 1;
  return labelled(
    Buffer.from(doc.slice(0, start) + text + doc.slice(start + m[1]!.length), 'utf8'),
    `text #${which % spots.length} = ${JSON.stringify(text)}`,
  );
}

/** Duplicates, drops or wraps one element (the `which`-th `<name>…</name>` pair). */
function editElement(raw: Buffer, which: number, how: 'duplicate' | 'drop' | 'wrap'): Buffer {
  const doc = raw.toString('utf8');
  const elements = [...doc.matchAll(/<([a-z_]+)[^>]*>[\s\S]*?<\/\1>/g)];
  if (elements.length === 0) return raw;
  const m = elements[which % elements.length]!;
  const before = doc.slice(0, m.index);
  const after = doc.slice(m.index + m[0].length);
  const edited = how === 'duplicate' ? m[0] + m[0] : how === 'drop' ? '' : `<wrapper>${m[0]}</wrapper>`;
  return labelled(
    Buffer.from(before + edited + after, 'utf8'),
    `${how} <${m[1]}> #${which % elements.length}`,
  );
}

describe('manifest reader', () => {
  it('reads every golden manifest as the fixtures describe it', () => {
    expect(manifests.length).toBeGreaterThanOrEqual(5);
    for (const { c, raw } of manifests) {
      const img = readManifest(raw).manifest.image;
      expect(img.name).toBe(c.expected!.name);
      expect(img.size).toBe(c.image.size);
      expect(img.bundledSize).toBe(c.expected!.bundled_size);
      expect(img.parts.map((p) => [p.filename, p.digest])).toEqual(
        c.expected!.parts.map((p) => [p.file, p.sha1]),
      );
      consistent(raw);
    }
  });

  const n = runs(60);
  for (const { c, raw } of manifests.slice(0, 3)) {
    it(
      `mutated bytes of ${c.case}: a BundleError or a consistent manifest`,
      async () => {
        await fc.assert(
          fc.asyncProperty(mutated(raw), async (input) => {
            await outcome('manifest', () => consistent(input));
          }),
          params(n),
        );
      },
      timeoutFor(n),
    );
  }

  it(
    'an element text replaced by hostile text: a BundleError or a consistent manifest',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.nat({ max: manifests.length - 1 }),
          fc.nat(),
          hostileText,
          async (m, which, text) => {
            const { raw } = manifests[m]!;
            await outcome('manifest', () => consistent(replaceText(raw, which, text)));
          },
        ),
        params(runs(150)),
      );
    },
    timeoutFor(runs(150)),
  );

  it(
    'an element duplicated, dropped or wrapped: a BundleError or a consistent manifest',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.nat({ max: manifests.length - 1 }),
          fc.nat(),
          fc.constantFrom('duplicate' as const, 'drop' as const, 'wrap' as const),
          async (m, which, how) => {
            const { raw } = manifests[m]!;
            await outcome('manifest', () => consistent(editElement(raw, which, how)));
          },
        ),
        params(runs(150)),
      );
    },
    timeoutFor(runs(150)),
  );

  it(
    'random bytes and random XML-ish text',
    async () => {
      const xmlish = fc
        .array(
          fc.oneof(
            fc.constantFrom('<manifest>', '</manifest>', '<image>', '</image>', '<', '>', '&', '"'),
            hostileText,
          ),
          {
            maxLength: 40,
          },
        )
        .map((bits) => labelled(Buffer.from(bits.join(''), 'utf8')));
      await fc.assert(
        fc.asyncProperty(fc.oneof(randomBytes(2048), xmlish), async (input) => {
          await outcome('manifest', () => consistent(input));
        }),
        params(runs(150)),
      );
    },
    timeoutFor(runs(150)),
  );
});

describe('part names', () => {
  it(
    'NAME.part.N round-trips, sorts in part order and passes the part-name check',
    async () => {
      const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,60}$/);
      await fc.assert(
        fc.asyncProperty(name, fc.integer({ min: 1, max: 100_000 }), async (base, count) => {
          await outcome('part names', () => {
            const width = partSuffixWidth(count);
            expect(width).toBe(String(count).length);
            const picks = [...new Set([0, count - 1, Math.floor(count / 2), Math.floor(count / 3)])].sort(
              (a, b) => a - b,
            );
            const names = picks.map((i) => partName(base, i, count));
            for (const [k, n] of names.entries()) {
              expect(checkPartName(n)).toBe(n);
              expect(n.startsWith(`${base}.part.`)).toBe(true);
              const suffix = n.slice(base.length + '.part.'.length);
              expect(suffix).toMatch(new RegExp(`^\\d{${width}}$`));
              expect(Number(suffix)).toBe(picks[k]);
            }
            expect([...names].sort()).toEqual(names);
          });
        }),
        params(runs(200)),
      );
    },
    timeoutFor(runs(200)),
  );

  it(
    'a file is part I of NAME only as NAME.part.I (unpadded, 2 digits or count-padded), whatever it is',
    async () => {
      const base = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$/);
      const target = fc
        .integer({ min: 1, max: 5000 })
        .chain((count) => fc.record({ count: fc.constant(count), index: fc.nat({ max: count - 1 }) }));
      const file = (b: string, index: number, count: number) =>
        fc.oneof(
          fc.constant(partName(b, index, count)),
          fc.constant(`${b}.part.${index}`),
          fc.string({ maxLength: 40 }),
          fc
            .tuple(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }))
            .map(([a, z]) => `${a}${partName(b, index, count)}${z}`),
          fc.stringMatching(/^[0-9+ -]{0,8}$/).map((n) => `${b}.part.${n}`),
        );
      await fc.assert(
        fc.asyncProperty(
          base.chain((b) =>
            target.chain(({ count, index }) =>
              fc.record({
                b: fc.constant(b),
                count: fc.constant(count),
                index: fc.constant(index),
                f: file(b, index, count),
              }),
            ),
          ),
          async ({ b, count, index, f }) => {
            const r = await outcome('isPartName', () => isPartOf(f, b, index, count));
            if (!r.ok || !r.value) return;
            const forms = [
              String(index),
              String(index).padStart(2, '0'),
              String(index).padStart(partSuffixWidth(count), '0'),
            ];
            expect(forms.map((n) => `${b}.part.${n}`)).toContain(f);
          },
        ),
        params(runs(300)),
      );
    },
    timeoutFor(runs(300)),
  );

  it('NAME.manifest.xml gives back NAME; anything else gives nothing or its own prefix', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 40 }), fc.boolean(), async (s, asManifest) => {
        const file = asManifest ? manifestName(s) : s;
        const r = await outcome('manifestBase', () => baseOfManifest(file));
        if (!r.ok) return;
        if (asManifest && s !== '') expect(r.value).toBe(s);
        if (r.value !== undefined) expect(manifestName(r.value)).toBe(file);
      }),
      params(runs(300)),
    );
  });

  it('part counts cover the bundled size with no empty last part', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 40 }), async (size) => {
        await outcome('part count', () => {
          const n = partCount(size);
          expect((n - 1) * PART_SIZE).toBeLessThan(size);
          expect(n * PART_SIZE).toBeGreaterThanOrEqual(size);
        });
      }),
      params(runs(200)),
    );
  });

  it(
    'the part-name check: any string is returned unchanged or refused with a BundleError',
    async () => {
      const candidate = fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.string({ unit: 'binary', maxLength: 40 }),
        fc.constantFrom('.', '..', '...', '../x', 'a/b', 'a\\b', 'x\0y', '..hidden', ' ', 'img.part.0'),
      );
      await fc.assert(
        fc.asyncProperty(candidate, async (s) => {
          const r = await outcome('part-name check', () => checkPartName(s));
          if (!r.ok) return;
          expect(r.value).toBe(s);
          expect(s).not.toMatch(/[/\\\0]/);
          expect(['', '.', '..']).not.toContain(s);
          expect(s.startsWith('..')).toBe(false);
        }),
        params(runs(300)),
      );
    },
    timeoutFor(runs(300)),
  );
});
