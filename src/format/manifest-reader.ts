// Reads a manifest of any version the reference reads (FORMAT.md §6), refusing hostile XML (DTDs,
// entities, oversize files), any layout but one signed `<image>` (and `<machine_configuration>`)
// directly under `<manifest>`, and inconsistent content. Every value used is parsed from the
// very bytes the signature covers, so what is verified is what is used.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { BundleError, describeError } from '../errors.js';
import type { DeviceMapping, Manifest, ManifestImage, ManifestPart } from './manifest.js';
import { signedLayout, type ElementRange } from './manifest-layout.js';
import { isPartName, manifestBase } from './part-name.js';
import { CONTROL_CHARACTERS } from '../printable.js';

export interface ParsedManifest {
  readonly manifest: Manifest;
  /** The manifest file's bytes, as read. */
  readonly raw: Buffer;
  /** Bytes the signature covers: the root's machine_configuration and image nodes (image only for v3). */
  readonly signedData: Buffer;
}

/** Far above any real manifest (≈150 bytes per part, ≤ ~1100 parts), far below harm. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  // Values like 012345678901 and 1e5 must stay strings.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: false,
  isArray: (name) => ['part', 'mapping', 'product_code', 'ancestor_ami_id'].includes(name),
});

/**
 * The root element of a manifest parsed with the reader's settings (values stay strings). `doc`
 * must already be known to be well-formed XML without a DTD (parseManifest checks that).
 */
export function manifestRoot(doc: string): unknown {
  const tree = parser.parse(doc) as Node;
  const rootName = Object.keys(tree).find((k) => !k.startsWith('?'));
  return rootName ? tree[rootName] : undefined;
}

function child(node: unknown, name: string): unknown {
  if (node === null || typeof node !== 'object') return undefined;
  return (node as Node)[name];
}

/** Text of an element: a plain string, or the `#text` of an element that has attributes. */
export function text(node: unknown): string | undefined {
  if (typeof node === 'string') return node;
  if (node !== null && typeof node === 'object') {
    const t = (node as Node)['#text'];
    if (typeof t === 'string') return t;
    if (t === undefined && Object.keys(node).every((k) => k.startsWith('@_'))) return '';
  }
  return undefined;
}

function attr(node: unknown, name: string): string | undefined {
  const v = child(node, `@_${name}`);
  return typeof v === 'string' ? v : undefined;
}

function required(node: unknown, path: string): string {
  const v = text(node)?.trim();
  if (v === undefined || v === '') throw new BundleError(`invalid manifest: ${path} is missing or empty`);
  return v;
}

function decimal(node: unknown, path: string): number {
  const v = required(node, path);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)))
    throw new BundleError(`invalid manifest: ${path} '${v}' is not a whole number`);
  return Number(v);
}

function hex(node: unknown, path: string): string {
  const v = required(node, path).replace(/\s+/g, '');
  if (!/^[0-9a-fA-F]+$/.test(v)) throw new BundleError(`invalid manifest: ${path} is not hexadecimal`);
  return v.toLowerCase();
}

function optionalText(node: unknown): string | undefined {
  const v = text(node)?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function list(node: unknown): unknown[] {
  return Array.isArray(node) ? node : node === undefined ? [] : [node];
}

/** A part file name must name a file in the bundle's own directory or prefix, nothing else. */
export function checkPartFileName(name: string): string {
  if (
    name === '' ||
    name === '.' ||
    name === '..' ||
    name.includes('/') ||
    name.includes('\\') ||
    name.includes('\0') ||
    name.startsWith('..')
  )
    throw new BundleError(`invalid manifest: part file name '${name}' is not a plain file name`);
  return name;
}

/**
 * Parts must be named NAME.part.N for the manifest's own `<name>` (what every bundler writes) or
 * for the NAME of the manifest file NAME.manifest.xml: nothing else is ever read, fetched or
 * deleted for this bundle.
 */
function checkPartNames(parts: readonly ManifestPart[], name: string, fileName: string | undefined): void {
  const fileBase = fileName === undefined ? undefined : manifestBase(fileName);
  for (const p of parts) {
    const ok =
      isPartName(p.filename, name, p.index, parts.length) ||
      (fileBase !== undefined && isPartName(p.filename, fileBase, p.index, parts.length));
    if (!ok)
      throw new BundleError(
        `invalid manifest: part ${p.index} is named '${p.filename}', not ${name}.part.${p.index} as the manifest's name requires`,
      );
  }
}

/** The image is restored as DEST/NAME: NAME must be a plain file name. */
function checkImageName(name: string): string {
  if (name === '.' || name === '..' || /[/\\\0]/.test(name))
    throw new BundleError(`invalid manifest: image name '${name}' is not a plain file name`);
  return name;
}

function parseParts(partsNode: unknown): ManifestPart[] {
  const parts = list(child(partsNode, 'part')).map((p, i): ManifestPart => {
    const indexText = attr(p, 'index');
    if (indexText === undefined || !/^\d+$/.test(indexText))
      throw new BundleError(`invalid manifest: part #${i + 1} has no valid index`);
    return {
      index: Number(indexText),
      filename: checkPartFileName(required(child(p, 'filename'), 'image/parts/part/filename')),
      digest: hex(child(p, 'digest'), 'image/parts/part/digest'),
    };
  });
  if (parts.length === 0) throw new BundleError('invalid manifest: it lists no parts');
  parts.sort((a, b) => a.index - b.index);
  parts.forEach((p, i) => {
    if (p.index !== i)
      throw new BundleError(
        `invalid manifest: part indices must run 0..${parts.length - 1} without gaps or repeats (found ${p.index} at position ${i})`,
      );
    if (!/^[0-9a-f]{40}$/.test(p.digest))
      throw new BundleError(`invalid manifest: part ${i} digest is not a SHA-1 (40 hex digits)`);
  });
  const names = new Set(parts.map((p) => p.filename));
  if (names.size !== parts.length) throw new BundleError('invalid manifest: two parts share a file name');
  const count = attr(partsNode, 'count');
  if (count !== undefined && Number(count) !== parts.length)
    throw new BundleError(`invalid manifest: parts count='${count}' but ${parts.length} parts are listed`);
  return parts;
}

/**
 * Refuses any string of the manifest holding a control character (C0, DEL, C1): names reach
 * file systems, S3 keys and terminals, and no value needs one. `where` names the field.
 */
function checkStrings(value: unknown, where: string): void {
  if (typeof value === 'string') {
    const m = CONTROL_CHARACTERS.exec(value);
    if (m)
      throw new BundleError(
        `invalid manifest: ${where} holds the control character U+${m[0].codePointAt(0)!.toString(16).padStart(4, '0').toUpperCase()}`,
      );
  } else if (Array.isArray(value)) value.forEach((v, i) => checkStrings(v, `${where}[${i}]`));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) checkStrings(v, where === '' ? k : `${where}.${k}`);
}

/**
 * The whole document's checks, before any value is read: size, UTF-8, no DTD or entities, XML at
 * all, no raw control characters, well-formed. Returns the text.
 */
function checkDocument(raw: Buffer): string {
  if (raw.length > MAX_MANIFEST_BYTES)
    throw new BundleError(`manifest is ${raw.length} bytes; no real manifest is over ${MAX_MANIFEST_BYTES}`);
  const doc = raw.toString('utf8');
  if (doc.includes('\uFFFD')) throw new BundleError('manifest is not valid UTF-8');
  // DTDs and entity declarations have no place in a manifest and enable expansion attacks.
  if (/<!DOCTYPE|<!ENTITY/i.test(doc))
    throw new BundleError('manifest contains a DTD or entity declaration; refusing to read it');
  if (!/^\s*<\?xml|^\s*</.test(doc))
    throw new BundleError('manifest is not XML (an encrypted legacy manifest? decrypt it first)');
  // Raw control characters anywhere (XML allows only TAB, LF and CR, between elements).
  const raw0 = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.exec(doc);
  if (raw0)
    throw new BundleError(
      `manifest holds the control character U+${raw0[0].codePointAt(0)!.toString(16).padStart(4, '0').toUpperCase()}`,
    );
  const valid = XMLValidator.validate(doc);
  if (valid !== true)
    throw new BundleError(`manifest is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  // The whole document must parse, not only the slices read later.
  wellFormed(doc);
  return doc;
}

/** The parsed root of `text`, or the error a malformed manifest gets. */
function wellFormed(text: string): unknown {
  try {
    return manifestRoot(text);
  } catch (err) {
    // The validator passes some documents the parser then refuses (a processing instruction
    // with mismatched quotes): still malformed XML, and said so.
    throw new BundleError(`manifest is not well-formed XML: ${describeError(err)}`);
  }
}

function bundlerOf(bundlerNode: unknown): Pick<Manifest, 'bundler'> {
  if (bundlerNode === undefined) return {};
  return {
    bundler: {
      name: optionalText(child(bundlerNode, 'name')) ?? '',
      version: optionalText(child(bundlerNode, 'version')) ?? '',
      release: optionalText(child(bundlerNode, 'release')) ?? '',
    },
  };
}

function machineConfigurationOf(mcNode: unknown): Pick<Manifest, 'machineConfiguration'> {
  if (mcNode === undefined) return {};
  const mappings = list(child(child(mcNode, 'block_device_mapping'), 'mapping')).map((m): DeviceMapping => ({
    virtual: required(child(m, 'virtual'), 'block_device_mapping/mapping/virtual'),
    device: required(child(m, 'device'), 'block_device_mapping/mapping/device'),
  }));
  const productCodes = list(child(child(mcNode, 'product_codes'), 'product_code'))
    .map(optionalText)
    .filter((c): c is string => c !== undefined);
  return {
    machineConfiguration: {
      architecture: optionalText(child(mcNode, 'architecture')),
      ...(mappings.length ? { blockDeviceMapping: mappings } : {}),
      kernelId: optionalText(child(mcNode, 'kernel_id')),
      ramdiskId: optionalText(child(mcNode, 'ramdisk_id')),
      ...(productCodes.length ? { productCodes } : {}),
    },
  };
}

/** `<image>`: its values, the digest and algorithms checked. */
function imageOf(image: unknown): ManifestImage {
  const digestNode = child(image, 'digest');
  const keyNode = child(image, 'user_encrypted_key');
  const compression = optionalText(child(image, 'compression'));
  if (compression !== undefined && compression !== 'gzip' && compression !== 'zstd')
    throw new BundleError(`manifest names compression '${compression}', which amibundle does not know`);
  const ancestry = list(child(child(image, 'ancestry'), 'ancestor_ami_id'))
    .map(optionalText)
    .filter((c): c is string => c !== undefined);
  const result: ManifestImage = {
    name: checkImageName(required(child(image, 'name'), 'image/name')),
    user: optionalText(child(image, 'user')) ?? '',
    type: optionalText(child(image, 'type')) ?? 'machine',
    kernelName: optionalText(child(image, 'kernel_name')),
    ...(ancestry.length ? { ancestry } : {}),
    digest: hex(digestNode, 'image/digest'),
    digestAlgorithm: attr(digestNode, 'algorithm') ?? 'SHA1',
    size: decimal(child(image, 'size'), 'image/size'),
    bundledSize: decimal(child(image, 'bundled_size'), 'image/bundled_size'),
    ec2EncryptedKey: optionalText(child(image, 'ec2_encrypted_key')) ?? '',
    userEncryptedKey: optionalText(keyNode) ?? '',
    ec2EncryptedIv: optionalText(child(image, 'ec2_encrypted_iv')) ?? '',
    userEncryptedIv: optionalText(child(image, 'user_encrypted_iv')) ?? '',
    keyAlgorithm: attr(keyNode, 'algorithm') ?? 'AES-128-CBC',
    ...(compression ? { compression } : {}),
    parts: parseParts(child(image, 'parts')),
  };
  if (!/^[0-9a-f]{40}$/.test(result.digest))
    throw new BundleError('invalid manifest: image/digest is not a SHA-1 (40 hex digits)');
  if (result.digestAlgorithm.toUpperCase() !== 'SHA1')
    throw new BundleError(`manifest digest algorithm '${result.digestAlgorithm}' is not SHA1`);
  if (result.keyAlgorithm.toUpperCase() !== 'AES-128-CBC')
    throw new BundleError(`manifest key algorithm '${result.keyAlgorithm}' is not AES-128-CBC`);
  return result;
}

/**
 * @param fileName the manifest's file or object name, when known: NAME.manifest.xml lets parts
 *   be named NAME.part.N as well as after the manifest's `<name>`.
 */
export function parseManifest(input: Buffer | string, fileName?: string): ParsedManifest {
  const raw = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  checkDocument(raw);
  const layout = signedLayout(raw);
  // Each root child is parsed from its own bytes: the image and machine configuration from
  // exactly the ranges the signature covers.
  const node = (range: ElementRange | undefined): unknown =>
    range === undefined ? undefined : wellFormed(raw.toString('utf8', range.start, range.end));
  const only = (name: string): ElementRange | undefined =>
    layout.layout.children.find((c) => c.name === name);
  const image = node(layout.image);
  if (image === undefined || image === null || typeof image !== 'object')
    throw new BundleError('invalid manifest: <image> is empty');
  const version = optionalText(node(only('version'))) ?? '';
  const bundler = bundlerOf(node(only('bundler')));
  const machineConfiguration = machineConfigurationOf(node(layout.machineConfiguration));
  const manifest: Manifest = {
    version,
    ...bundler,
    ...machineConfiguration,
    image: imageOf(image),
    signature: optionalText(node(only('signature'))),
  };
  checkStrings(manifest, '');
  checkPartNames(manifest.image.parts, manifest.image.name, fileName);
  return { manifest, raw, signedData: layout.signedData };
}
