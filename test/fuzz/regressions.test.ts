// Failures the property tests found, each kept as a named test of the fixed behaviour.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BundleError } from '../../src/errors.js';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { bundledCases } from '../support/fixtures.js';

const readManifest = (raw: Buffer) => parseManifest(raw);

const golden = (): string => {
  const c = bundledCases()[0]!;
  return fs.readFileSync(path.join(c.dir, c.expected!.manifest_file), 'utf8');
};

describe('manifest reader regressions (found by test/fuzz/manifest.test.ts)', () => {
  it('a processing instruction the validator passes but the parser refuses is never a plain Error', () => {
    // Mutation: one byte deleted and ten duplicated at the start: <?ml version=' version='1.0'?>
    const doc = golden().replace(/^<\?xml version='1\.0'\?>/, "<?ml version=' version='1.0'?>");
    expect(doc.startsWith('<?ml')).toBe(true);
    // Refused as malformed XML, or read (a reader that parses only the signed nodes never sees
    // the prolog); what it must not do is throw the XML parser's own error.
    let thrown: unknown;
    try {
      readManifest(Buffer.from(doc));
    } catch (err) {
      thrown = err;
    }
    if (thrown !== undefined) {
      expect(thrown).toBeInstanceOf(BundleError);
      expect((thrown as Error).message).toMatch(/manifest is not well-formed XML/);
    }
  });

  it('an image digest that is hex but not 40 digits is refused when the manifest is read', () => {
    const doc = golden().replace(/(<digest algorithm=["']SHA1["']>)[0-9a-f]{40}(<\/digest>)/, '$10$2');
    expect(doc).not.toBe(golden());
    expect(() => readManifest(Buffer.from(doc))).toThrow(/image\/digest is not a SHA-1/);
  });
});
