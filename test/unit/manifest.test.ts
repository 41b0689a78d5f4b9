import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { aesMaterial, createUnwrapper } from '../../src/crypto/key-wrap.js';
import { loadCertificate, loadPrivateKey } from '../../src/crypto/keys.js';
import { verifyHex } from '../../src/crypto/signature.js';
import { parseManifest } from '../../src/format/manifest-reader.js';
import { serializeSigned, serializeUnsigned, signedBytes } from '../../src/format/manifest-writer.js';
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
