// Every part's SHA-1 is computed exactly once per restore, whoever checks it: the restore's reader
// for a directory of parts (the fixtures, bundled by the real ec2-ami-tools), the S3 source as the
// part arrives (test/integration/s3-streaming.test.ts counts that case the same way).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readManifestFile } from '../../src/format/manifest-file.js';
import { DirPartSource } from '../../src/parts/dir-part-source.js';
import { partsHashed } from '../../src/parts/part-digest.js';
import { partReadAhead, DEFAULT_PART_READ_AHEAD } from '../../src/parts/read-ahead.js';
import { restoreBundle, verifyParts } from '../../src/restore/restore.js';
import { bundledCases, key, tempDir } from '../support/fixtures.js';

describe('part SHA-1: one check per part', () => {
  const c = bundledCases().find((x) => x.expected!.part_count > 1) ?? bundledCases()[0]!;

  it(`restore from a directory hashes each part once (${c.case})`, async () => {
    const manifest = readManifestFile(path.join(c.dir, c.expected!.manifest_file));
    const tmp = tempDir('part-digest');
    try {
      const before = { ...partsHashed };
      await restoreBundle({
        manifest,
        source: new DirPartSource(path.dirname(path.join(c.dir, c.expected!.manifest_file))),
        privateKeyPem: key('user-key.pem'),
        destination: tmp.dir,
        skipSignature: true,
      });
      expect(partsHashed.parts - before.parts).toBe(c.expected!.part_count);
      expect(partsHashed.bytes - before.bytes).toBe(c.expected!.bundled_size);
    } finally {
      tmp.remove();
    }
  });

  it('verify hashes each part once, and a source that checked a part is trusted for it', async () => {
    const manifest = readManifestFile(path.join(c.dir, c.expected!.manifest_file));
    const dir = new DirPartSource(path.dirname(path.join(c.dir, c.expected!.manifest_file)));
    let before = { ...partsHashed };
    await verifyParts({ manifest, source: dir, skipSignature: true });
    expect(partsHashed.bytes - before.bytes).toBe(c.expected!.bundled_size);
    // A source that reports the digest it checked each part against: the reader does not hash.
    const digests = new Map(manifest.manifest.image.parts.map((p) => [p.filename, p.digest]));
    const checking = {
      description: 'checked',
      readPart: dir.readPart.bind(dir),
      checkedDigest: (f: string) => digests.get(f),
    };
    before = { ...partsHashed };
    await verifyParts({ manifest, source: checking, skipSignature: true });
    expect(partsHashed.bytes - before.bytes).toBe(0);
    // One that checked against another digest is not trusted.
    const wrong = { ...checking, checkedDigest: () => '0'.repeat(40) };
    before = { ...partsHashed };
    await verifyParts({ manifest, source: wrong, skipSignature: true });
    expect(partsHashed.bytes - before.bytes).toBe(c.expected!.bundled_size);
  });

  it('one read-ahead setting: directories use the default, a source may ask for more, within the cap', () => {
    expect(partReadAhead(new DirPartSource('.'))).toBe(DEFAULT_PART_READ_AHEAD);
    expect(partReadAhead({ description: 'x', readPart: async () => Buffer.alloc(0), readAhead: 5 })).toBe(5);
    expect(partReadAhead({ description: 'x', readPart: async () => Buffer.alloc(0), readAhead: 99 })).toBe(8);
  });
});
