// A bundle's objects as the transfer commands see them: the manifest read from a file or from
// S3, and its parts in the reference's order (by file name, then index).
import fs from 'node:fs';
import { BundleError, MissingFileError } from '../errors.js';
import { MAX_MANIFEST_BYTES, parseManifest, type ParsedManifest } from '../format/manifest-reader.js';
import type { ManifestPart } from '../format/manifest.js';

/** Parts are 10 MiB; anything far larger is not a part and would only exhaust memory. */
export const MAX_PART_BYTES = 64 * 1024 * 1024;

export function readLocalManifest(file: string): ParsedManifest {
  let raw: Buffer;
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_MANIFEST_BYTES) throw new BundleError(`${file} is ${size} bytes: not a bundle manifest`);
    raw = fs.readFileSync(file);
  } catch (err) {
    if (err instanceof BundleError) throw err;
    throw new MissingFileError(`cannot read the manifest ${file}: ${(err as Error).message}`);
  }
  return parseNamed(raw, file);
}

/** parseManifest, with the manifest's name in the message. */
export function parseNamed(raw: Buffer, where: string): ParsedManifest {
  try {
    return parseManifest(raw);
  } catch (err) {
    if (err instanceof BundleError) throw new BundleError(`${where}: ${err.message}`, err.hint);
    throw err;
  }
}

export function orderedParts(parsed: ParsedManifest): ManifestPart[] {
  return [...parsed.manifest.image.parts].sort((a, b) =>
    a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : a.index - b.index,
  );
}

/** Longest common prefix of the part names: narrows the listing a resume needs. */
export function commonPrefix(names: readonly string[]): string {
  if (names.length === 0) return '';
  let prefix = names[0]!;
  for (const n of names) {
    let i = 0;
    while (i < prefix.length && i < n.length && prefix[i] === n[i]) i++;
    prefix = prefix.slice(0, i);
  }
  return prefix;
}
