// Writes a manifest byte for byte as ec2-ami-tools 1.5.3 does (REXML's default formatter):
// one line, `<?xml version='1.0'?>`, no whitespace between elements, single-quoted attributes,
// `& < > " '` escaped, elements with no value left out (FORMAT.md §5.1-5.3) except
// machine_configuration, which every version but 3 must have.
import { BundleError } from '../errors.js';
import type { Manifest } from './manifest.js';
import { isVersion3, signedLayout } from './manifest-layout.js';

/** XML 1.0 Char production minus CR (REXML would turn CR into LF, changing the signed bytes). */
const NOT_XML_CHAR = /[^\t\n\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

export function escapeXmlText(value: string): string {
  if (NOT_XML_CHAR.test(value))
    throw new BundleError(`manifest value ${JSON.stringify(value)} contains a character XML cannot hold`);
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function el(name: string, value: string | undefined, attr?: [string, string]): string {
  if (value === undefined || value === '') return '';
  const a = attr ? ` ${attr[0]}='${escapeXmlText(attr[1])}'` : '';
  return `<${name}${a}>${escapeXmlText(value)}</${name}>`;
}

/** An element holding children; omitted when it would be empty. */
function group(name: string, children: string, attr?: [string, string]): string {
  if (children === '') return '';
  const a = attr ? ` ${attr[0]}='${escapeXmlText(attr[1])}'` : '';
  return `<${name}${a}>${children}</${name}>`;
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The manifest without `<signature>`: the document whose substrings get signed. */
export function serializeUnsigned(m: Manifest): string {
  const mc = m.machineConfiguration;
  const bdm = [...(mc?.blockDeviceMapping ?? [])].sort((x, y) => byteCompare(x.virtual, y.virtual));
  const machineChildren = mc
    ? el('architecture', mc.architecture) +
      group(
        'block_device_mapping',
        bdm.map((d) => group('mapping', el('virtual', d.virtual) + el('device', d.device))).join(''),
      ) +
      el('kernel_id', mc.kernelId) +
      el('ramdisk_id', mc.ramdiskId) +
      group('product_codes', (mc.productCodes ?? []).map((c) => el('product_code', c)).join(''))
    : '';
  // Every version but 3 must have the element (readers refuse it missing), even with nothing in
  // it: then in REXML's form of a childless element, `<x/>`, which survives its re-serialisation
  // (`<x></x>` would not, FORMAT.md §5.1, §5.7). The bundlers always set architecture.
  const machine =
    machineChildren !== ''
      ? `<machine_configuration>${machineChildren}</machine_configuration>`
      : mc || !isVersion3(m.version)
        ? '<machine_configuration/>'
        : '';
  const img = m.image;
  const parts = img.parts
    .map((p) =>
      group('part', el('filename', p.filename) + el('digest', p.digest, ['algorithm', 'SHA1']), [
        'index',
        String(p.index),
      ]),
    )
    .join('');
  const image = group(
    'image',
    el('name', img.name) +
      el('user', img.user) +
      el('type', img.type) +
      el('kernel_name', img.kernelName) +
      group('ancestry', (img.ancestry ?? []).map((a) => el('ancestor_ami_id', a)).join('')) +
      el('digest', img.digest, ['algorithm', img.digestAlgorithm]) +
      el('size', String(img.size)) +
      el('bundled_size', String(img.bundledSize)) +
      el('ec2_encrypted_key', img.ec2EncryptedKey, ['algorithm', img.keyAlgorithm]) +
      el('user_encrypted_key', img.userEncryptedKey, ['algorithm', img.keyAlgorithm]) +
      el('ec2_encrypted_iv', img.ec2EncryptedIv) +
      el('user_encrypted_iv', img.userEncryptedIv) +
      (img.compression && img.compression !== 'gzip' ? el('compression', img.compression) : '') +
      `<parts count='${img.parts.length}'>${parts}</parts>`,
  );
  const bundler = m.bundler
    ? group(
        'bundler',
        el('name', m.bundler.name) + el('version', m.bundler.version) + el('release', m.bundler.release),
      )
    : '';
  return `<?xml version='1.0'?><manifest>${el('version', m.version)}${bundler}${machine}${image}</manifest>`;
}

/** Bytes covered by the signature of a manifest we write. */
export function signedBytes(unsigned: string): Buffer {
  return signedLayout(Buffer.from(unsigned, 'utf8')).signedData;
}

/** The complete manifest file: the unsigned document with `<signature>` appended last. */
export function serializeSigned(unsigned: string, signatureHex: string): Buffer {
  const close = '</manifest>';
  if (!unsigned.endsWith(close)) throw new Error('not a manifest document');
  return Buffer.from(
    `${unsigned.slice(0, -close.length)}<signature>${signatureHex}</signature>${close}`,
    'utf8',
  );
}
