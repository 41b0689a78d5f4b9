// The import graph of src/, checked against the layering the README draws (issue 13): cli/ on top,
// then the feature folders, then parts/, then codec/, format/ and crypto/, then io/, with
// events.ts, errors.ts and the other leaf modules at the ground. An import may only point down or
// sideways within a layer, and no two folders may import each other, directly or round a loop,
// unless the pair is listed below with the reason. Imports are read with the TypeScript parser
// (import and export declarations, type-only ones included, and dynamic import()).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const src = path.join(root, 'src');

/** Higher imports lower. A folder missing here fails the test until it is given a layer. */
const LAYER: Readonly<Record<string, number>> = {
  cli: 5,
  // src/index.ts, the package's library entry: it re-exports the feature calls, so it sits on top.
  index: 5,
  bundle: 4,
  restore: 4,
  s3: 4,
  volume: 4,
  migrate: 4,
  doctor: 4,
  bench: 4,
  disk: 4,
  ebs: 4,
  ec2: 4,
  hvm: 4,
  parts: 3,
  codec: 2,
  format: 2,
  crypto: 2,
  io: 1,
  // Files directly in src/: events.ts, errors.ts, printable.ts, format-bytes.ts, version.ts …
  '.': 0,
};

const LAYER_NAMES = [
  'the ground (src/*.ts)',
  'io/',
  'codec/, format/, crypto/',
  'parts/',
  'features',
  'cli/ and src/index.ts',
];

/**
 * Folder pairs that import each other, allowed for the reason given. Key: the two folders in
 * alphabetical order, joined by ' <-> '.
 */
const ALLOWED_CYCLES: Readonly<Record<string, string>> = {
  'disk <-> restore':
    'restore/ picks the disk-format sink for --format; the VHD, VMDK and raw sinks write through restore/image-writer.ts (the sparse image file writer)',
};

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return filesUnder(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

/** The folder a file of src/ belongs to ('.' for files directly in src/, 'index' for src/index.ts). */
function folderOf(file: string): string {
  const rel = path.relative(src, file);
  if (rel === 'index.ts') return 'index';
  return rel.includes(path.sep) ? rel.split(path.sep)[0]! : '.';
}

/** Relative module specifiers `file` imports, each resolved to a file path under src/. */
function importsOf(file: string): string[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const specs: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      if (ts.isStringLiteral(node.moduleSpecifier)) specs.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      specs.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return specs
    .filter((s) => s.startsWith('.'))
    .map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')))
    .filter((target) => target.startsWith(src + path.sep));
}

interface Edge {
  readonly from: string;
  readonly to: string;
  readonly file: string;
  readonly target: string;
}

function edges(): Edge[] {
  return filesUnder(src).flatMap((file) =>
    importsOf(file)
      .filter((target) => folderOf(target) !== folderOf(file))
      .map((target) => ({
        from: folderOf(file),
        to: folderOf(target),
        file: path.relative(root, file),
        target: path.relative(root, target),
      })),
  );
}

/** Folder pairs on a loop of imports: every pair of folders that reach each other. */
function cyclePairs(all: readonly Edge[]): string[] {
  const next = new Map<string, Set<string>>();
  for (const e of all) {
    if (!next.has(e.from)) next.set(e.from, new Set());
    next.get(e.from)!.add(e.to);
  }
  const reach = (start: string): Set<string> => {
    const seen = new Set<string>();
    const todo = [...(next.get(start) ?? [])];
    while (todo.length > 0) {
      const f = todo.pop()!;
      if (seen.has(f)) continue;
      seen.add(f);
      todo.push(...(next.get(f) ?? []));
    }
    return seen;
  };
  const folders = [...next.keys()].sort();
  const pairs: string[] = [];
  for (const a of folders)
    for (const b of folders) if (a < b && reach(a).has(b) && reach(b).has(a)) pairs.push(`${a} <-> ${b}`);
  return pairs;
}

describe('the import graph of src/', () => {
  const all = edges();

  it('every folder has a layer', () => {
    const folders = [...new Set(filesUnder(src).map(folderOf))];
    expect(folders.filter((f) => LAYER[f] === undefined)).toEqual([]);
  });

  it('no import points up a layer', () => {
    const upward = all
      .filter((e) => (LAYER[e.to] ?? 0) > (LAYER[e.from] ?? 0))
      .map(
        (e) =>
          `${e.file} (${LAYER_NAMES[LAYER[e.from] ?? 0]}) imports ${e.target} (${LAYER_NAMES[LAYER[e.to] ?? 0]})`,
      );
    expect(upward).toEqual([]);
  });

  it('no two folders import each other, unless listed with a reason', () => {
    const cycles = cyclePairs(all).filter((pair) => ALLOWED_CYCLES[pair] === undefined);
    expect(cycles).toEqual([]);
  });

  it('each listed cycle is still there (a broken one is taken off the list)', () => {
    const found = new Set(cyclePairs(all));
    expect(Object.keys(ALLOWED_CYCLES).filter((pair) => !found.has(pair))).toEqual([]);
  });

  it('the reader sees imports of every kind', () => {
    const file = path.join(src, 'restore', 'restore.ts');
    const targets = importsOf(file).map((t) => path.relative(src, t));
    // A type-only import and a value import of the same file.
    expect(targets).toContain(path.join('parts', 'part-source.ts'));
    expect(targets).toContain(path.join('events.ts'));
  });
});
