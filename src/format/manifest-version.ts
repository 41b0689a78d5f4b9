// Which manifest version a file is, decided as ec2-migrate-manifest decides it (FORMAT.md §6.3),
// and the fields a migration needs from it. Other readers are version-agnostic; only migration
// cares, because it rewrites older versions as 2007-10-10.
import { BundleError } from '../errors.js';
import { manifestRoot, text } from './manifest-reader.js';

export type ManifestVersionClass = '3' | '2007-08-29' | '2007-10-10';

/** Ruby `String#to_i`: optional leading space and sign, then leading digits (`_` between them). */
export function rubyToI(text: string): number {
  const m = /^\s*([+-]?)(\d+(?:_\d+)*)/.exec(text);
  if (!m) return 0;
  const n = Number(m[2]!.replace(/_/g, ''));
  return m[1] === '-' ? -n : n;
}

/** Classifies the text of `<version>`; throws the reference's messages for what it refuses. */
export function classifyVersion(text: string | undefined): ManifestVersionClass {
  if (text === undefined) throw new BundleError('Invalid manifest.');
  const n = rubyToI(text);
  if (n > 20071010) throw new BundleError('Manifest is too new for this tool to handle. Please upgrade.');
  if (n < 3) throw new BundleError('Manifest is too old for this tool to handle.');
  if (text === '2007-10-10') return '2007-10-10';
  if (text === '2007-08-29' || text === '20070829') return '2007-08-29';
  if (n === 3) return '3';
  throw new BundleError('Unrecognised manifest version.');
}

type Node = Record<string, unknown>;

/** The element at a slash-separated path below `root` (the first of repeated elements). */
function at(root: unknown, path: string): unknown {
  let node = root;
  for (const name of path.split('/')) {
    if (Array.isArray(node)) node = node[0];
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Node)[name];
  }
  return Array.isArray(node) ? node[0] : node;
}

/**
 * The fields a migrated manifest is rebuilt from. The EC2 copies of the key and IV are not
 * among them (unlike the reference): migration wraps them anew, so a manifest that lacks them
 * can still be migrated.
 */
const REQUIRED_ALWAYS = [
  'image/name',
  'image/user',
  'image/digest',
  'image/size',
  'image/bundled_size',
  'image/user_encrypted_key',
  'image/user_encrypted_iv',
  'bundler/name',
  'bundler/version',
  'bundler/release',
];

const REQUIRED_BY_VERSION: Record<ManifestVersionClass, readonly string[]> = {
  '3': [],
  '2007-08-29': ['machine_configuration/architecture'],
  '2007-10-10': ['image/type'],
};

/**
 * Reads `<version>` and checks the required elements. `doc` must already be known to be
 * well-formed XML without a DTD (parseManifest checks that).
 */
export function checkMigratable(doc: string): ManifestVersionClass {
  const root = manifestRoot(doc);
  const versionClass = classifyVersion(text(at(root, 'version')));
  for (const path of [...REQUIRED_ALWAYS, ...REQUIRED_BY_VERSION[versionClass]]) {
    const value = text(at(root, path));
    if (value === undefined || value.trim() === '')
      throw new BundleError(`invalid AMI manifest, ${path} element not present or empty`);
  }
  return versionClass;
}
