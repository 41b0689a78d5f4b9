// Reading a manifest from a file (or bytes fetched elsewhere) into a ParsedManifest, with the
// file or object named in every error and the exit code a missing file deserves.
import path from 'node:path';
import { BundleError } from '../errors.js';
import { MAX_MANIFEST_BYTES, parseManifest, type ParsedManifest } from './manifest-reader.js';
import { readRegularSync } from '../io/safe-open.js';

/** parseManifest, with where the manifest came from in the message. */
export function parseNamed(raw: Buffer, where: string): ParsedManifest {
  try {
    return parseManifest(raw, path.basename(where));
  } catch (err) {
    if (err instanceof BundleError) throw new BundleError(`${where}: ${err.message}`, err.hint);
    throw err;
  }
}

/** Reads a manifest file: a regular file only (never through a link, never a FIFO), size-capped. */
export function readManifestFile(file: string): ParsedManifest {
  return parseNamed(readRegularSync(file, 'manifest', MAX_MANIFEST_BYTES), file);
}
