// Access to the ec2-ami-tools 1.5.3 golden fixtures kept in the repository (test/fixtures/), so a
// clone passes its own tests with nothing beside it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateFixtureImage } from './fixture-image.js';
import type { GeneratedImage } from './fixture-image.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const fixturesRoot = path.join(projectRoot, 'test/fixtures/ami-tools-1.5.3');
export const keysDir = path.join(fixturesRoot, 'keys');

export interface FixtureCase {
  readonly case: string;
  readonly dir: string;
  readonly image: {
    file: string;
    size: number;
    sha256: string;
    committed: boolean;
    sparse: boolean;
    mode: string;
    mtime: number;
    data_map_at_bundle_time: [number, number][];
  };
  readonly bundle: { argv: string[]; exit_code: number; stderr: string };
  readonly expected?: {
    name: string;
    manifest_file: string;
    part_count: number;
    parts: { index: number; file: string; size: number; sha1: string }[];
    bundled_size: number;
    key_material: { key_ascii_hex: string; iv_ascii_hex: string };
    tar: { size: number; sha1: string; members: { header_blocks_hex: string[] }[] };
    manifest: { bytes: number; sha256: string };
  };
}

export function allCases(): FixtureCase[] {
  return fs
    .readdirSync(fixturesRoot)
    .filter((d) => fs.existsSync(path.join(fixturesRoot, d, 'case.json')))
    .sort()
    .map((d) => ({
      ...(JSON.parse(fs.readFileSync(path.join(fixturesRoot, d, 'case.json'), 'utf8')) as Omit<
        FixtureCase,
        'dir'
      >),
      dir: path.join(fixturesRoot, d),
    }));
}

export function bundledCases(): FixtureCase[] {
  return allCases().filter((c) => c.expected !== undefined);
}

export function key(name: string): string {
  return fs.readFileSync(path.join(keysDir, name), 'utf8');
}

/** A private temporary directory (mode 0700) removed by the returned function. */
export function tempDir(label: string): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `amibundle-${label}-`));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Re-creates a fixture's image (with its mode, mtime and hole layout), checking its SHA-256. */
export function regenerateImage(c: FixtureCase, outDir: string): string {
  const out = path.join(outDir, c.image.file);
  generateFixtureImage(c.image as unknown as GeneratedImage, out);
  return out;
}
