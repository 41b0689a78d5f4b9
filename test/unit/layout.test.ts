// The code's layout, checked: each fact has one home (issue 13: a fact written twice drifts, as
// the two writeFileAtomic copies did, one syncing and one not). Each rule names the one file that
// may spell the fact; anywhere else, the same spelling is a copy.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PIECE_MARK } from '../../src/codec/piece-mark.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function filesUnder(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'build') out.push(...filesUnder(rel, ext));
    } else if (ext.test(entry.name)) out.push(rel);
  }
  return out.sort();
}

const sources = [...filesUnder('src', /\.ts$/), ...filesUnder('scripts', /\.(mjs|js|ts)$/)];
const nativeSources = filesUnder('native', /\.[ch]$/);

/** Files among `files` whose text matches `pattern`. */
function spelledIn(files: readonly string[], pattern: RegExp): string[] {
  return files.filter((f) => pattern.test(fs.readFileSync(path.join(root, f), 'utf8')));
}

interface Fact {
  readonly what: string;
  readonly pattern: RegExp;
  readonly home: readonly string[];
  readonly files?: readonly string[];
}

const facts: readonly Fact[] = [
  {
    what: 'writing a whole file atomically and durably',
    pattern: /function writeFileAtomic\b/,
    home: ['src/io/atomic-file.ts'],
  },
  {
    what: "a buffer's SHA-1 in hex",
    pattern: /createHash\(['"]sha1['"]\)\s*\.update\(|function sha1Hex/,
    home: ['src/io/async-sha1.ts'],
  },
  {
    what: "EC2's 10 GiB instance-store root limit",
    // (10240 alone is also tar's record size, so the MiB form is caught as `= 10240`.)
    pattern: /10 \* 2 \*\* 30|10 \* 1024 \* 1024 \* 1024|10 \* 1024 \*\* 3|MIB = 10240\b|\b10737418240\b/i,
    home: ['src/ec2-limits.ts'],
  },
  {
    what: "the image reader's read size",
    pattern: /const READ_SIZE\s*=/,
    home: ['src/bundle/tar-stream.ts'],
  },
  {
    what: "libuv's threadpool size",
    pattern: /env\[['"]UV_THREADPOOL_SIZE['"]\]|env\.UV_THREADPOOL_SIZE/,
    home: ['src/io/threadpool.ts'],
  },
  {
    what: 'the manifest version amibundle writes',
    pattern: /['"`]2007-10-10['"`]/,
    // manifest-version.ts names the three versions ec2-migrate-manifest tells apart.
    home: ['src/format/manifest-version.ts', 'src/version.ts'],
  },
  {
    what: 'the piece mark (TypeScript)',
    pattern: /0000ffff000000ffff|0x00, 0x00, 0xff, 0xff/i,
    home: ['src/codec/piece-mark.ts'],
  },
  {
    what: 'the piece mark (C)',
    pattern: /0x00, 0x00, 0xff, 0xff/i,
    home: ['native/piece_mark.h'],
    files: nativeSources,
  },
  {
    // parallel-gzip.ts says why: block is deflate's and tar's word, chunk a stream's.
    what: 'the 1 MiB unit of parallel gzip, called a piece everywhere (no other name)',
    pattern: /deflateChunk|inflateChunk|deflateBlock|deflate_chunk|inflate_chunk|GZIP_BLOCK/,
    home: [],
    files: [...sources, ...nativeSources],
  },
  {
    what: 'a byte count for people',
    pattern: /function formatBytes\b/,
    home: ['src/format-bytes.ts'],
  },
];

describe('one home per fact', () => {
  for (const fact of facts) {
    it(`${fact.what}: only in ${fact.home.join(', ') || 'no file'}`, () => {
      const found = spelledIn(fact.files ?? sources, fact.pattern);
      expect(found).toEqual([...fact.home].sort());
    });
  }

  it('the piece mark is the same nine bytes in TypeScript and C', () => {
    const header = fs.readFileSync(path.join(root, 'native/piece_mark.h'), 'utf8');
    const bytes = /#define PIECE_MARK_BYTES \{([^}]*)\}/.exec(header)?.[1];
    const len = /#define PIECE_MARK_LEN (\d+)/.exec(header)?.[1];
    expect(bytes).toBeDefined();
    const parsed = bytes!.split(',').map((b) => Number.parseInt(b.trim(), 16));
    expect(Buffer.from(parsed)).toEqual(PIECE_MARK);
    expect(Number(len)).toBe(PIECE_MARK.length);
  });
});
