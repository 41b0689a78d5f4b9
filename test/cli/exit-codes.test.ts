// The README's exit-code table and ExitCode (errors.ts) agree: every code the program can exit
// with is documented, and every documented code other than the unused ones exists.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { projectRoot } from '../support/fixtures.js';

function readmeCodes(): { used: number[]; unused: number[] } {
  const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Exit codes'));
  const used: number[] = [];
  const unused: number[] = [];
  for (const m of section.matchAll(/^\| ([\d, ]+) \| (.*) \|$/gm)) {
    const codes = m[1]!.split(',').map((c) => Number(c.trim()));
    (m[2]!.startsWith('not used') ? unused : used).push(...codes);
  }
  return { used, unused };
}

describe('exit codes', () => {
  it('the README table documents exactly the codes ExitCode defines (plus 128 + signal)', () => {
    const { used, unused } = readmeCodes();
    const defined = Object.values(ExitCode).sort((a, b) => a - b);
    expect(used.filter((c) => c < 128 || c > 143).sort((a, b) => a - b)).toEqual(defined);
    for (const c of unused) expect(defined).not.toContain(c);
  });
});
