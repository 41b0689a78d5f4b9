// Which temporaries the sweep removes: those whose owner (pid, start time, boot id) is gone, and
// only those of the named bundle or image; a live process's, other names' and files that merely
// look alike stay.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeStale, ownedTempPath, removeStaleTemps } from '../../src/io/owned-temp.js';
import { tempDir } from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
beforeAll(() => {
  tmp = tempDir('owned-temp');
});
afterAll(() => tmp.remove());

describe('owned temporaries', () => {
  it('removes dead owners’ temporaries of the name and nothing else', () => {
    const dir = fs.mkdtempSync(path.join(tmp.dir, 'sweep-'));
    const live = path.basename(ownedTempPath(dir, 'img.part.0'));
    const [, pid, start, boot] = /amibundle-(\d+)-(\d*)-([0-9a-f]*)-/.exec(live)!;
    expect(Number(pid)).toBe(process.pid);
    const names = {
      live,
      reusedPid: `.img.part.1.amibundle-${pid}-${Number(start) + 1}-${boot}-0badc0de.tmp`,
      otherBoot: `.img.part.2.amibundle-${pid}-${start}-000000000000-0badc0de.tmp`,
      noSuchPid: `.img.amibundle-999999999-${start}-${boot}-0badc0de.partial`,
      otherName: `.other.part.0.amibundle-999999999-${start}-${boot}-0badc0de.tmp`,
      lookalike: `.img.part.3.amibundle-1a2b3c.tmp`,
      final: 'img.part.0',
    };
    for (const n of Object.values(names)) fs.writeFileSync(path.join(dir, n), 'x'.repeat(1000));
    const stale = removeStaleTemps(dir, 'img');
    expect(stale).toEqual({ files: 3, bytes: 3000 });
    expect(fs.readdirSync(dir).sort()).toEqual(
      [names.live, names.otherName, names.lookalike, names.final].sort(),
    );
    expect(describeStale(stale, dir, 'img\x1b[2J')).toMatch(
      /^removed 3 temporary file\(s\) \(0\.0 MiB\) of 'img\?\[2J'/,
    );
    expect(describeStale({ files: 0, bytes: 0 }, dir, 'img')).toBeUndefined();
  });

  it('a missing directory has nothing to sweep', () => {
    expect(removeStaleTemps(path.join(tmp.dir, 'absent'), 'img')).toEqual({ files: 0, bytes: 0 });
  });
});
