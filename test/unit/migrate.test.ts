// The migrate library: version rules, REXML form, signature checks, id choice, and rebuilding
// every golden fixture manifest (and older versions made from them) for another EC2 key.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { aesMaterial, createUnwrapper } from '../../src/crypto/key-wrap.js';
import { loadCertificate, loadPrivateKey } from '../../src/crypto/keys.js';
import { createSelfSigned } from '../../src/crypto/self-signed.js';
import { signHex, verifyHex } from '../../src/crypto/signature.js';
import { AmiError, ExitCode } from '../../src/errors.js';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { checkMigratable, classifyVersion, rubyToI } from '../../src/format/manifest-version.js';
import {
  authenticate,
  chooseIds,
  readSourceManifest,
  rebuildManifest,
  type IdChoice,
} from '../../src/migrate/migrate.js';
import { rexmlForm } from '../../src/format/rexml-form.js';
import { bundledCases, key } from '../support/fixtures.js';

const userKey = loadPrivateKey(key('user-key.pem'));
const userCert = loadCertificate(key('user-cert.pem'));
const tinyCase = bundledCases().find((c) => c.case === 'a-tiny')!;
const tinyXml = fs.readFileSync(path.join(tinyCase.dir, tinyCase.expected!.manifest_file), 'utf8');

let newEc2: { key: crypto.KeyObject; cert: crypto.X509Certificate };
beforeAll(async () => {
  const made = await createSelfSigned({ bits: 2048, commonName: 'throw-away EC2 stand-in', days: 1 });
  newEc2 = { key: loadPrivateKey(made.privateKeyPem), cert: loadCertificate(made.certificatePem) };
});

function between(doc: string, open: string, close: string): string {
  const start = doc.indexOf(open);
  return doc.slice(start, doc.indexOf(close, start) + close.length);
}

/** a-tiny's manifest rewritten as an older version and signed as that version's writer did. */
function olderVersion(version: '3' | '20070829'): string {
  const image = between(tinyXml, '<image>', '</image>').replace('<type>machine</type>', '');
  const bundler = between(tinyXml, '<bundler>', '</bundler>');
  const machine =
    version === '3'
      ? ''
      : '<machine_configuration><architecture>x86_64</architecture></machine_configuration>';
  const signature = signHex(userKey, Buffer.from(machine + image, 'utf8'));
  return `<?xml version='1.0'?><manifest><version>${version}</version>${bundler}${machine}${image}<signature>${signature}</signature></manifest>`;
}

function unwrapWith(k: crypto.KeyObject, hex: string): string {
  return aesMaterial(createUnwrapper(k).unwrap(hex, 'test'), 'test').toString('hex');
}

const keep: IdChoice = { removed: [] };

describe('version rules (FORMAT.md §6.3)', () => {
  it('reads versions with Ruby to_i semantics', () => {
    expect(rubyToI('2007-10-10')).toBe(2007);
    expect(rubyToI('20070829')).toBe(20070829);
    expect(rubyToI(' 3')).toBe(3);
    expect(rubyToI('x3')).toBe(0);
    expect(rubyToI('1_000')).toBe(1000);
  });

  it('classifies and refuses as the reference does', () => {
    expect(classifyVersion('2007-10-10')).toBe('2007-10-10');
    expect(classifyVersion('2007-08-29')).toBe('2007-08-29');
    expect(classifyVersion('20070829')).toBe('2007-08-29');
    expect(classifyVersion('3')).toBe('3');
    expect(() => classifyVersion(undefined)).toThrow('Invalid manifest.');
    expect(() => classifyVersion('20071011')).toThrow(
      'Manifest is too new for this tool to handle. Please upgrade.',
    );
    expect(() => classifyVersion('2')).toThrow('Manifest is too old for this tool to handle.');
    expect(() => classifyVersion('2008-01-01')).toThrow('Unrecognised manifest version.');
  });

  it('requires the fields each version must carry', () => {
    expect(checkMigratable(tinyXml)).toBe('2007-10-10');
    expect(() => checkMigratable(tinyXml.replace('<type>machine</type>', ''))).toThrow(
      'invalid AMI manifest, image/type element not present or empty',
    );
    expect(() =>
      checkMigratable(olderVersion('20070829').replace(/<architecture>[^<]*<\/architecture>/, '')),
    ).toThrow('machine_configuration/architecture');
    expect(() => checkMigratable(olderVersion('3').replace(/<bundler>.*<\/bundler>/, ''))).toThrow(
      'bundler/name element not present',
    );
    expect(() => checkMigratable(tinyXml.replace(/<user>\d+<\/user>/, '<user></user>'))).toThrow(
      'image/user',
    );
    // The EC2 copies are wrapped anew, so a manifest without them can still be migrated.
    expect(checkMigratable(tinyXml.replace(/<ec2_encrypted_iv>[^<]*<\/ec2_encrypted_iv>/, ''))).toBe(
      '2007-10-10',
    );
  });
});

describe('REXML form', () => {
  it('rewrites tags as REXML writes them and keeps text verbatim', () => {
    expect(rexmlForm(`<a x="1"  y = '2'><b></b><c /><d>t&amp;u\r\nv</d><!-- "x" --></a >`)).toBe(
      `<a x='1' y='2'><b/><c/><d>t&amp;u\nv</d><!-- "x" --></a>`,
    );
    expect(rexmlForm(`<p q="it's">z</p>`)).toBe(`<p q='it&apos;s'>z</p>`);
    expect(rexmlForm(tinyXml)).toBe(tinyXml);
  });
});

describe('authentication', () => {
  it('verifies the fixtures over their own bytes', () => {
    for (const c of bundledCases()) {
      const raw = fs.readFileSync(path.join(c.dir, c.expected!.manifest_file));
      expect(authenticate(readSourceManifest(raw), userCert), c.case).toBe('raw');
    }
  });

  it('falls back to the REXML form for a manifest signed over it but stored otherwise', () => {
    // Signed over single quotes (what REXML re-emits), stored with double quotes.
    const doubled = tinyXml.replace(/ (\w+)='([^']*)'/g, ' $1="$2"');
    expect(doubled).not.toBe(tinyXml);
    expect(authenticate(readSourceManifest(Buffer.from(doubled)), userCert)).toBe('rexml');
  });

  it('fails a tampered manifest, another certificate, and v3 signed over the wrong region', () => {
    const tampered = tinyXml.replace('<size>102733</size>', '<size>102734</size>');
    expect(authenticate(readSourceManifest(Buffer.from(tampered)), userCert)).toBeUndefined();
    expect(authenticate(readSourceManifest(Buffer.from(tinyXml)), newEc2.cert)).toBeUndefined();
    expect(authenticate(readSourceManifest(Buffer.from(olderVersion('3'))), userCert)).toBe('raw');
    expect(authenticate(readSourceManifest(Buffer.from(olderVersion('20070829'))), userCert)).toBe('raw');
    const v3WithMachine = olderVersion('3').replace(
      '<image>',
      '<machine_configuration><architecture>i386</architecture></machine_configuration><image>',
    );
    // Version 3 signs <image> only, so an added machine_configuration would be used unsigned:
    // refused before any check...
    expect(() => readSourceManifest(Buffer.from(v3WithMachine))).toThrow(
      /version 3 has no <machine_configuration>/,
    );
    // ...but for 2007-08-29 it is covered.
    const changedArch = olderVersion('20070829').replace('x86_64', 'i386');
    expect(authenticate(readSourceManifest(Buffer.from(changedArch)), userCert)).toBeUndefined();
  });
});

describe('kernel and ramdisk ids', () => {
  const mc = { architecture: 'x86_64', kernelId: 'aki-1', ramdiskId: 'ari-2' };

  it('refuses automatic mapping, naming what to pass instead (exit 1)', () => {
    let err: unknown;
    try {
      chooseIds(mc, { mapping: true, kernel: 'aki-9' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AmiError);
    expect((err as AmiError).exitCode).toBe(ExitCode.usage);
    expect((err as AmiError).message).toContain('automatic kernel/ramdisk mapping is not supported');
    expect((err as AmiError).message).toContain('ramdisk ari-2');
    expect((err as AmiError).message).not.toContain('aki-1');
    expect((err as AmiError).hint).toContain('--ramdisk ID');
    expect((err as AmiError).hint).toContain('--no-mapping');
  });

  it('needs no mapping when nothing is to be mapped', () => {
    expect(chooseIds({ architecture: 'x86_64' }, { mapping: true })).toEqual({ removed: [] });
    expect(chooseIds(undefined, { mapping: true, kernel: 'aki-5' })).toEqual({
      kernelId: 'aki-5',
      removed: [],
    });
    expect(chooseIds(mc, { mapping: true, kernel: 'aki-8', ramdisk: 'ari-9' })).toEqual({
      kernelId: 'aki-8',
      ramdiskId: 'ari-9',
      removed: [],
    });
  });

  it('drops ids not given with --no-mapping, and an explicit empty id', () => {
    expect(chooseIds(mc, { mapping: false })).toEqual({ removed: ['aki-1', 'ari-2'] });
    expect(chooseIds(mc, { mapping: false, kernel: 'aki-1' })).toEqual({
      kernelId: 'aki-1',
      removed: ['ari-2'],
    });
    expect(chooseIds(mc, { mapping: true, kernel: '', ramdisk: 'ari-2' })).toEqual({
      ramdiskId: 'ari-2',
      removed: ['aki-1'],
    });
  });
});

describe('rebuilding', () => {
  for (const c of bundledCases()) {
    it(`${c.case}: key and IV re-wrapped for another EC2 key, everything else kept, re-signed`, () => {
      const raw = fs.readFileSync(path.join(c.dir, c.expected!.manifest_file));
      const source = readSourceManifest(raw);
      const ids = chooseIds(source.parsed.manifest.machineConfiguration, {
        mapping: false,
        kernel: source.parsed.manifest.machineConfiguration?.kernelId ?? '',
      });
      const out = rebuildManifest(source, { privateKey: userKey, userCert, ec2Cert: newEc2.cert, ids });
      const back = parseManifest(out.bytes);
      expect(verifyHex(userCert.publicKey, back.signedData, back.manifest.signature!)).toBe(true);
      const img = back.manifest.image;
      const material = c.expected!.key_material;
      expect(unwrapWith(newEc2.key, img.ec2EncryptedKey)).toBe(material.key_ascii_hex);
      expect(unwrapWith(newEc2.key, img.ec2EncryptedIv)).toBe(material.iv_ascii_hex);
      const before = source.parsed.manifest;
      expect(img.userEncryptedKey).toBe(before.image.userEncryptedKey);
      expect(img.ec2EncryptedKey).not.toBe(before.image.ec2EncryptedKey);
      expect(img.parts).toEqual(before.image.parts);
      expect(back.manifest.machineConfiguration).toEqual({
        ...before.machineConfiguration,
        ramdiskId: undefined,
      });
      // Apart from the four changed values (ramdisk dropped, new EC2 copies, new signature) the
      // bytes are the original's: our writer is byte-exact with the reference.
      const strip = (x: string): string =>
        x
          .replace(/<ramdisk_id>[^<]*<\/ramdisk_id>/, '')
          .replace(/<(ec2_encrypted_(?:key|iv)|signature)([^>]*)>[0-9a-f]+</g, '<$1$2><');
      expect(strip(out.bytes.toString('utf8'))).toBe(strip(raw.toString('utf8')));
    });
  }

  it('version 3 becomes 2007-10-10 with architecture i386 and type machine', () => {
    const out = rebuildManifest(readSourceManifest(Buffer.from(olderVersion('3'))), {
      privateKey: userKey,
      userCert,
      ec2Cert: newEc2.cert,
      ids: keep,
    });
    const text = out.bytes.toString('utf8');
    expect(text).toContain('<version>2007-10-10</version>');
    expect(text).toContain(
      '<machine_configuration><architecture>i386</architecture></machine_configuration>',
    );
    expect(text).toContain('<type>machine</type>');
    expect(text).toContain(between(tinyXml, '<bundler>', '</bundler>'));
    // Same bytes as a 2007-10-10 bundle of the same image, but for the architecture and keys.
    const norm = (x: string): string =>
      x
        .replace(/<architecture>[^<]*</, '<architecture><')
        .replace(/<(ec2_encrypted_(?:key|iv)|signature)([^>]*)>[0-9a-f]+</g, '<$1$2><');
    expect(norm(text)).toBe(norm(tinyXml));
    expect(unwrapWith(newEc2.key, out.manifest.image.ec2EncryptedKey)).toBe(
      tinyCase.expected!.key_material.key_ascii_hex,
    );
  });

  it('2007-08-29 keeps its architecture and gets type machine', () => {
    const source = readSourceManifest(Buffer.from(olderVersion('20070829')));
    expect(source.versionClass).toBe('2007-08-29');
    const out = rebuildManifest(source, { privateKey: userKey, userCert, ec2Cert: newEc2.cert, ids: keep });
    const back = parseManifest(out.bytes);
    expect(back.manifest.version).toBe('2007-10-10');
    expect(back.manifest.machineConfiguration?.architecture).toBe('x86_64');
    expect(back.manifest.image.type).toBe('machine');
    expect(verifyHex(userCert.publicKey, back.signedData, back.manifest.signature!)).toBe(true);
  });

  for (const empty of ['<machine_configuration/>', '<machine_configuration></machine_configuration>'])
    it(`2007-10-10 with an empty machine_configuration (${empty}) keeps the element`, () => {
      const machine = between(tinyXml, '<machine_configuration>', '</machine_configuration>');
      const unsigned = tinyXml.replace(/<signature>[0-9a-f]+<\/signature>/, '').replace(machine, empty);
      // ec2-ami-tools' rule (FORMAT.md §5.6): a self-closed element is not found, so signs nothing.
      const signedMachine = empty.endsWith('/>') ? '' : empty;
      const signature = signHex(
        userKey,
        Buffer.from(signedMachine + between(unsigned, '<image>', '</image>')),
      );
      const raw = unsigned.replace('</manifest>', `<signature>${signature}</signature></manifest>`);
      const source = readSourceManifest(Buffer.from(raw));
      expect(source.parsed.manifest.machineConfiguration?.architecture).toBeUndefined();
      const out = rebuildManifest(source, { privateKey: userKey, userCert, ec2Cert: newEc2.cert, ids: keep });
      const text = out.bytes.toString('utf8');
      // REXML's form of a childless element, which its re-serialisation leaves as it is.
      expect(text).toContain('</bundler><machine_configuration/><image>');
      expect(rexmlForm(text)).toBe(text);
      const back = parseManifest(out.bytes);
      expect(back.manifest.version).toBe('2007-10-10');
      expect(back.manifest.machineConfiguration?.architecture).toBeUndefined();
      expect(verifyHex(userCert.publicKey, back.signedData, back.manifest.signature!)).toBe(true);
      // …and signed as the Ruby tools check it: over <image> alone.
      const imageOnly = Buffer.from(between(text, '<image>', '</image>'));
      expect(verifyHex(userCert.publicKey, imageOnly, back.manifest.signature!)).toBe(true);
    });

  it('refuses a private key that does not belong to the certificate, or cannot unwrap the key', () => {
    const source = readSourceManifest(Buffer.from(tinyXml));
    expect(() =>
      rebuildManifest(source, { privateKey: newEc2.key, userCert, ec2Cert: newEc2.cert, ids: keep }),
    ).toThrow('does not match the private key');
    expect(() =>
      rebuildManifest(source, {
        privateKey: newEc2.key,
        userCert: newEc2.cert,
        ec2Cert: newEc2.cert,
        ids: keep,
      }),
    ).toThrow(/cannot decrypt the manifest's user_encrypted_key/);
  });
});
