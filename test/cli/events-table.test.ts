// The README's JSON events table and the AmibundleEvent union (through EVENT_FIELDS, which the
// compiler ties to the union) list the same event types, and each row names the fields the
// union says that type carries.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_FIELDS, EVENT_TYPES } from '../../src/events.js';
import { projectRoot } from '../support/fixtures.js';

/** The rows of the table under "| type | fields |": event types and the backticked words of the fields. */
function readmeTable(): Map<string, Set<string>> {
  const readme = fs.readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  const lines = readme.split('\n');
  const head = lines.findIndex((l) => /^\| type \| fields \|$/.test(l.trim()));
  expect(head, 'README has the JSON events table').toBeGreaterThanOrEqual(0);
  const rows = new Map<string, Set<string>>();
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    const [types, fields] = line
      .split('|')
      .slice(1, 3)
      .map((c) => c.trim());
    const words = new Set([...fields!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
    for (const m of types!.matchAll(/`([^`]+)`/g)) rows.set(m[1]!, words);
  }
  return rows;
}

describe('the README JSON events table', () => {
  it('lists exactly the event types of the union', () => {
    expect([...readmeTable().keys()].sort()).toEqual([...EVENT_TYPES].sort());
  });

  it('names every field each type carries', () => {
    const table = readmeTable();
    for (const type of EVENT_TYPES) {
      const named = table.get(type) ?? new Set<string>();
      const missing = (EVENT_FIELDS[type] as readonly string[]).filter((f) => !named.has(f));
      expect(missing, `README row of '${type}' lacks fields`).toEqual([]);
    }
  });
});
