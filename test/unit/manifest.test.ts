import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { aesMaterial, createUnwrapper } from '../../src/crypto/key-wrap.js';
import { loadCertificate, loadPrivateKey } from '../../src/crypto/keys.js';
import { verifyHex } from '../../src/crypto/signature.js';
import { manifestLayout } from '../../src/format/manifest-layout.js';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { serializeSigned, serializeUnsigned, signedBytes } from '../../src/format/manifest-writer.js';
import { wrappingAttack } from '../support/craft-bundle.js';
import { bundledCases, key } from '../support/fixtures.js';

describe('manifest reader and writer against ec2-ami-tools 1.5.3 manifests', () => {
  for (const c of bundledCases()) {
    const file = path.join(c.dir, c.expected!.manifest_file);
    it(`${c.case}: parses, re-serialises to the exact bytes, verifies and unwraps`, () => {
      const raw = fs.readFileSync(file);
      const parsed = parseManifest(raw);
      const m = parsed.manifest;
      expect(m.image.name).toBe(c.expected!.name);
      expect(m.image.parts.map((p) => p.filename)).toEqual(c.expected!.parts.map((p) => p.file));
      expect(m.image.parts.map((p) => p.digest)).toEqual(c.expected!.parts.map((p) => p.sha1));
      expect(m.image.bundledSize).toBe(c.expected!.bundled_size);
      expect(m.image.digest).toBe(c.expected!.tar.sha1);

      const unsigned = serializeUnsigned(m);
      const written = serializeSigned(unsigned, m.signature!);
      expect(written.toString('utf8')).toBe(raw.toString('utf8'));
      expect(Buffer.compare(signedBytes(unsigned), parsed.signedData)).toBe(0);

      const cert = loadCertificate(key('user-cert.pem'));
      expect(verifyHex(cert.publicKey, parsed.signedData, m.signature!)).toBe(true);
      const tampered = Buffer.from(parsed.signedData);
      tampered[tampered.length - 20] = tampered[tampered.length - 20]! ^ 1;
      expect(verifyHex(cert.publicKey, tampered, m.signature!)).toBe(false);

      for (const [keyFile, keyHex, ivHex] of [
        ['user-key.pem', m.image.userEncryptedKey, m.image.userEncryptedIv],
        ['ec2-key-pkcs1.pem', m.image.ec2EncryptedKey, m.image.ec2EncryptedIv],
      ] as const) {
        const unwrapper = createUnwrapper(loadPrivateKey(key(keyFile)));
        expect(aesMaterial(unwrapper.unwrap(keyHex, 'key'), 'key').toString('hex')).toBe(
          c.expected!.key_material.key_ascii_hex,
        );
        expect(aesMaterial(unwrapper.unwrap(ivHex, 'iv'), 'iv').toString('hex')).toBe(
          c.expected!.key_material.iv_ascii_hex,
        );
      }
      expect(crypto.createHash('sha256').update(written).digest('hex')).toBe(c.expected!.manifest.sha256);
    });
  }
});

describe('the signed nodes are the used nodes (signature wrapping refused)', () => {
  const c = bundledCases().find((x) => x.case === 'a-tiny')!;
  const victim = fs.readFileSync(path.join(c.dir, c.expected!.manifest_file), 'utf8');
  // Another image: same shape, other name and digest (what an attacker would put at the root).
  const attacker = victim
    .replace(/tiny\.img/g, 'evil.img')
    .replace(
      /<digest algorithm='SHA1'>[0-9a-f]{40}<\/digest><size>/,
      `<digest algorithm='SHA1'>${'ab'.repeat(20)}</digest><size>`,
    );
  const cert = loadCertificate(key('user-cert.pem'));

  it('the attacker image differs and its own signature does not verify', () => {
    expect(attacker).not.toBe(victim);
    const p = parseManifest(attacker);
    expect(verifyHex(cert.publicKey, p.signedData, p.manifest.signature!)).toBe(false);
  });

  for (const wrapper of ['wrapper', 'bundler', 'version', 'signature']) {
    it(`a signed pair hidden in <${wrapper}> with another <image> at the root is refused`, () => {
      expect(() => parseManifest(wrappingAttack(victim, attacker, wrapper))).toThrow(
        /unknown element <wrapper>|nested where it does not belong/,
      );
    });
  }

  it('two <image> or two <machine_configuration> at the root are refused', () => {
    const image = victim.slice(victim.indexOf('<image>'), victim.indexOf('</image>') + 8);
    expect(() => parseManifest(victim.replace('<signature>', `${image}<signature>`))).toThrow(
      /2 <image> elements/,
    );
    const mc = victim.slice(victim.indexOf('<machine_configuration>'), victim.indexOf('<image>'));
    expect(() => parseManifest(victim.replace('<image>', `${mc}<image>`))).toThrow(
      /2 <machine_configuration> elements/,
    );
  });

  it('a root other than <manifest>, or a 2007 manifest without <machine_configuration>, is refused', () => {
    expect(() => parseManifest(victim.replace(/<(\/?)manifest>/g, '<$1other>'))).toThrow(
      /root element is <other>/,
    );
    const mc = victim.slice(victim.indexOf('<machine_configuration>'), victim.indexOf('<image>'));
    expect(() => parseManifest(victim.replace(mc, ''))).toThrow(/no <machine_configuration>/);
  });

  it('a signed pair in a comment or CDATA is not taken for the nodes: the root image is what is signed', () => {
    const pair = victim.slice(victim.indexOf('<machine_configuration>'), victim.indexOf('<signature>'));
    const attackerPair = attacker.slice(
      attacker.indexOf('<machine_configuration>'),
      attacker.indexOf('<signature>'),
    );
    for (const hide of [`<!--${pair}-->`, `<?x ${pair}?>`]) {
      const doc = attacker.replace('<machine_configuration>', `${hide}<machine_configuration>`);
      const p = parseManifest(doc);
      expect(p.manifest.image.name).toBe('evil.img');
      expect(p.signedData.toString('utf8')).toBe(attackerPair);
      expect(verifyHex(cert.publicKey, p.signedData, p.manifest.signature!)).toBe(false);
    }
    // Markup-like text in an attribute value or CDATA does not open or close an element.
    const tricky = victim.replace(
      '<user>123456789012</user>',
      '<user>123456789012<![CDATA[</image><image>]]></user>',
    );
    const p = parseManifest(tricky);
    expect(p.manifest.image.user).toBe('123456789012</image><image>');
    expect(p.signedData.toString('utf8')).toContain('<![CDATA[</image><image>]]>');
  });

  it('the fixture itself still verifies over its own nodes', () => {
    const p = parseManifest(victim);
    expect(verifyHex(cert.publicKey, p.signedData, p.manifest.signature!)).toBe(true);
  });
});

describe('manifestLayout', () => {
  it("finds the root's direct children by their own byte ranges", () => {
    const doc = Buffer.from(
      `<?xml version='1.0'?><!-- <image>x</image> --><manifest><a x='>'><image>in</image></a><b/>é<image k="</image>">ok</image></manifest>`,
    );
    const l = manifestLayout(doc);
    expect(l.rootName).toBe('manifest');
    expect(l.children.map((c) => [c.name, doc.toString('utf8', c.start, c.end)])).toEqual([
      ['a', "<a x='>'><image>in</image></a>"],
      ['b', '<b/>'],
      ['image', '<image k="</image>">ok</image>'],
    ]);
    expect([...l.deeperNames]).toEqual(['image']);
  });
  it('refuses a second root element', () => {
    expect(() => manifestLayout(Buffer.from('<manifest/><manifest/>'))).toThrow(/more than one root/);
  });
});
