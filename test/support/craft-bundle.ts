// Builds bundles with arbitrary (possibly hostile) tar content or manifests, encrypted and signed
// for real with the fixtures' test keys, to test what unbundle refuses.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { wrapHex } from '../../src/crypto/key-wrap.js';
import { loadCertificate, loadPrivateKey } from '../../src/crypto/keys.js';
import { signHex } from '../../src/crypto/signature.js';
import type { Manifest } from '../../src/format/manifest.js';
import { serializeSigned, serializeUnsigned, signedBytes } from '../../src/format/manifest-writer.js';
import { signedLayout } from '../../src/format/manifest-layout.js';
import { partName } from '../../src/format/part-name.js';
import {
  BLOCK,
  endOfArchiveLength,
  memberHeaderBlocks,
  type MemberInfo,
} from '../../src/format/tar-header.js';
import type { CliResult } from './cli.js';
import { runCli } from './cli.js';
import { key, keysDir } from './fixtures.js';

/** A tar stream of the given members (headers from our writer, data of `fill`), properly ended. */
export function tarOfMembers(
  members: { info: MemberInfo; typeflag?: string; data?: Buffer }[],
  end = true,
): Buffer {
  const chunks: Buffer[] = [];
  for (const m of members) {
    const header = memberHeaderBlocks(m.info);
    if (m.typeflag) {
      const h = header.subarray(header.length - BLOCK);
      h[156] = m.typeflag.charCodeAt(0);
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (const b of h) sum += b;
      h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    }
    chunks.push(header);
    const data = m.data ?? Buffer.alloc(m.info.size, 0x61);
    chunks.push(data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  const body = Buffer.concat(chunks);
  return end ? Buffer.concat([body, Buffer.alloc(endOfArchiveLength(body.length))]) : body;
}

export interface CraftOptions {
  /** Image size the manifest claims (default: the first member's size). */
  size?: number;
  partSize?: number;
  /** Override part file names as written in the manifest (files are written under them when plain). */
  partNames?: (index: number, count: number) => string;
  /** Edit the manifest text before writing; it is then signed again unless `resign` is false. */
  editManifest?: (xml: string) => string;
  /** false: keep the signature made before `editManifest` (which then no longer matches). */
  resign?: boolean;
  /** PEM private key that signs the manifest (default: the fixtures' user key, which -k is). */
  signingKey?: string;
  /** Change the manifest model before it is signed. */
  editModel?: (m: Manifest) => Manifest;
  /** Digest to claim (default: the real SHA-1 of the tar stream). */
  digest?: string;
  /**
   * The compressed stream to encrypt instead of gzip of the tar (possibly damaged), and the codec
   * the manifest names for it.
   */
  compressed?: { compression: 'zstd'; bytes: Buffer };
}

export function craftBundle(dir: string, name: string, tar: Buffer, opts: CraftOptions = {}): string {
  const keyHex = crypto.randomBytes(16).toString('hex');
  const ivHex = crypto.randomBytes(16).toString('hex');
  const cipher = crypto.createCipheriv('aes-128-cbc', Buffer.from(keyHex, 'hex'), Buffer.from(ivHex, 'hex'));
  const compressed = opts.compressed?.bytes ?? zlib.gzipSync(tar);
  const encrypted = Buffer.concat([cipher.update(compressed), cipher.final()]);
  const partSize = opts.partSize ?? 10 * 1024 * 1024;
  const count = Math.max(1, Math.ceil(encrypted.length / partSize));
  const names = Array.from({ length: count }, (_, i) =>
    (opts.partNames ?? ((j, n) => partName(name, j, n)))(i, count),
  );
  const parts = names.map((filename, index) => {
    const data = encrypted.subarray(index * partSize, (index + 1) * partSize);
    if (!filename.includes('/') && !filename.includes('\\') && filename !== '..')
      fs.writeFileSync(path.join(dir, filename), data);
    return { index, filename, digest: crypto.createHash('sha1').update(data).digest('hex') };
  });
  const userCert = loadCertificate(key('user-cert.pem'));
  const ec2Cert = loadCertificate(key('ec2-cert.pem'));
  let model: Manifest = {
    version: '2007-10-10',
    bundler: { name: 'test', version: '1', release: '0' },
    machineConfiguration: { architecture: 'x86_64' },
    image: {
      name,
      user: '123456789012',
      type: 'machine',
      digest: opts.digest ?? crypto.createHash('sha1').update(tar).digest('hex'),
      digestAlgorithm: 'SHA1',
      size: opts.size ?? 1024,
      bundledSize: encrypted.length,
      ec2EncryptedKey: wrapHex(ec2Cert.publicKey, keyHex),
      userEncryptedKey: wrapHex(userCert.publicKey, keyHex),
      ec2EncryptedIv: wrapHex(ec2Cert.publicKey, ivHex),
      userEncryptedIv: wrapHex(userCert.publicKey, ivHex),
      keyAlgorithm: 'AES-128-CBC',
      parts,
      ...(opts.compressed ? { compression: opts.compressed.compression } : {}),
    },
  };
  if (opts.editModel) model = opts.editModel(model);
  const signer = loadPrivateKey(opts.signingKey ?? key('user-key.pem'));
  const unsigned = serializeUnsigned(model);
  let xml = serializeSigned(unsigned, signHex(signer, signedBytes(unsigned))).toString();
  if (opts.editManifest) {
    xml = opts.editManifest(xml);
    if (opts.resign !== false) xml = resign(xml, signer);
  }
  const manifestPath = path.join(dir, `${name}.manifest.xml`);
  fs.writeFileSync(manifestPath, xml);
  return manifestPath;
}

/** The manifest signed again over its own nodes; left as it is when it has no usable layout. */
function resign(xml: string, signer: crypto.KeyObject): string {
  const unsigned = xml.replace(/<signature>[^<]*<\/signature>/, '');
  let signed: Buffer;
  try {
    signed = signedLayout(Buffer.from(unsigned)).signedData;
  } catch {
    return xml;
  }
  return serializeSigned(unsigned, signHex(signer, signed)).toString();
}

function between(doc: string, open: string, close: string): string {
  const start = doc.indexOf(open);
  return doc.slice(start, doc.indexOf(close, start) + close.length);
}

/**
 * The signature-wrapping attack of issue 11: the victim's legitimately signed
 * machine_configuration and image hidden inside `wrapper` (an unknown element by default), the
 * attacker's own image at the root, and the victim's signature.
 */
export function wrappingAttack(victimXml: string, attackerXml: string, wrapper = 'wrapper'): string {
  const signedPair =
    between(victimXml, '<machine_configuration>', '</machine_configuration>') +
    between(victimXml, '<image>', '</image>');
  const signature = between(victimXml, '<signature>', '</signature>');
  const hidden =
    wrapper === 'bundler'
      ? between(attackerXml, '<bundler>', '</bundler>').replace('</bundler>', `${signedPair}</bundler>`)
      : `${between(attackerXml, '<bundler>', '</bundler>')}<${wrapper}>${signedPair}</${wrapper}>`;
  return (
    `<?xml version='1.0'?><manifest><version>2007-10-10</version>${hidden}` +
    between(attackerXml, '<machine_configuration>', '</machine_configuration>') +
    between(attackerXml, '<image>', '</image>') +
    `${signature}</manifest>`
  );
}

/**
 * Crafts a bundle of `tar` (named `name`, default img) in WORK/bundle and restores it with `tool`
 * (the fixtures' user key as -k) into WORK/dest, both made empty here; `mutate` may change the
 * bundle and `prepareDest` the destination in between.
 */
export async function unbundleCrafted(
  work: string,
  tar: Buffer,
  opts: CraftOptions & {
    name?: string;
    tool?: string;
    extra?: readonly string[];
    env?: NodeJS.ProcessEnv;
    mutate?: (bundleDir: string) => void;
    prepareDest?: (dest: string) => void;
  } = {},
): Promise<{ r: CliResult; bundle: string; dest: string }> {
  const bundle = path.join(work, 'bundle');
  const dest = path.join(work, 'dest');
  fs.mkdirSync(bundle);
  fs.mkdirSync(dest);
  const manifest = craftBundle(bundle, opts.name ?? 'img', tar, opts);
  opts.mutate?.(bundle);
  opts.prepareDest?.(dest);
  const tool = opts.tool ?? 'ec2-unbundle';
  const args = [
    ...(tool === 'amibundle' ? ['unbundle'] : []),
    '-m',
    manifest,
    '-k',
    path.join(keysDir, 'user-key.pem'),
    '-s',
    bundle,
    '-d',
    dest,
    ...(opts.extra ?? []),
  ];
  const r = await runCli(tool, args, { env: opts.env ?? {} });
  return { r, bundle, dest };
}
