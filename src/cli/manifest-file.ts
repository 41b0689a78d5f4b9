// Reading a manifest named on the command line into a ParsedManifest, with the exit code and
// message the user needs when it is missing or malformed.
import fs from 'node:fs';
import { BundleError, MissingFileError } from '../errors.js';
import { MAX_MANIFEST_BYTES, parseManifest, type ParsedManifest } from '../format/manifest-reader.js';

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
  try {
    return parseManifest(raw);
  } catch (err) {
    if (err instanceof BundleError) throw new BundleError(`${file}: ${err.message}`, err.hint);
    throw err;
  }
}
