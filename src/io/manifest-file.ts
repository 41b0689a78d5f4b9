// Reading a manifest from a file (or bytes fetched elsewhere) into a ParsedManifest, with the
// file or object named in every error and the exit code a missing file deserves.
import fs from 'node:fs';
import path from 'node:path';
import { BundleError, MissingFileError } from '../errors.js';
import { MAX_MANIFEST_BYTES, parseManifest, type ParsedManifest } from '../format/manifest-reader.js';

/** parseManifest, with where the manifest came from in the message. */
export function parseNamed(raw: Buffer, where: string): ParsedManifest {
  try {
    return parseManifest(raw, path.basename(where));
  } catch (err) {
    if (err instanceof BundleError) throw new BundleError(`${where}: ${err.message}`, err.hint);
    throw err;
  }
}

export function readManifestFile(file: string): ParsedManifest {
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
