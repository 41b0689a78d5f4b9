// Property test of a whole restore: mutated fixture tar streams, bundled for real (gzip, AES, signed
// manifest), restored into a destination inside the sandbox. Each ends in a BundleError with the
// destination left empty, or in one image identical to what GNU tar extracts from the same stream.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { DirPartSource } from '../../src/parts/dir-part-source.js';
import { restoreBundle } from '../../src/restore/restore.js';
import { craftBundle } from '../support/craft-bundle.js';
import { key } from '../support/fixtures.js';
import { fixtureTar, mutated, outcome, params, runs, sandbox, smallCases } from './fuzz-support.js';

const readManifest = (raw: Buffer) => parseManifest(raw);

/** A whole restore unwraps RSA keys and starts workers: a larger bound than one reader's. */
const RESTORE_DEADLINE_MS = 10_000;

let box: { dir: string; done: () => void };
beforeAll(() => {
  box = sandbox('restore');
});
afterAll(() => {
  fs.rmSync(path.join(box.dir, 'runs'), { recursive: true, force: true });
  box.done();
});

function gnuTar(stream: Buffer): Buffer | undefined {
  const r = spawnSync('tar', ['-xOf', '-'], { input: stream, maxBuffer: 1 << 26 });
  return r.status === 0 ? r.stdout : undefined;
}

describe('restore of mutated tar streams', () => {
  const c = smallCases().find((x) => x.case === 'a-tiny') ?? smallCases()[0]!;
  const n = runs(6);
  let run = 0;
  it(
    `${c.case}: a BundleError and an empty destination, or the image GNU tar extracts`,
    async () => {
      const tar = fixtureTar(c);
      const privateKeyPem = key('user-key.pem');
      await fc.assert(
        fc.asyncProperty(mutated(tar), async (input) => {
          const dir = path.join(box.dir, 'runs', String(run++));
          const dest = path.join(dir, 'dest');
          fs.mkdirSync(dest, { recursive: true });
          const manifest = craftBundle(dir, c.expected!.name, input, { size: c.image.size });
          const r = await outcome(
            'restore',
            () =>
              restoreBundle({
                manifest: readManifest(fs.readFileSync(manifest)),
                source: new DirPartSource(dir),
                privateKeyPem,
                destination: dest,
              }),
            RESTORE_DEADLINE_MS,
          );
          const left = fs.readdirSync(dest);
          if (!r.ok) expect(left).toEqual([]);
          else {
            expect(left).toEqual([path.basename(r.value.imagePath!)]);
            const theirs = gnuTar(input);
            expect(theirs, 'GNU tar refuses a stream we restored').toBeDefined();
            expect(fs.readFileSync(r.value.imagePath!).equals(theirs!)).toBe(true);
          }
          fs.rmSync(dir, { recursive: true, force: true });
        }),
        params(n),
      );
    },
    n * RESTORE_DEADLINE_MS + 60_000,
  );
});
