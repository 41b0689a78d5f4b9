// Unwrapping the AES key and IV: PKCS#1 v1.5 removed by our own code around OpenSSL's raw RSA
// (Node 20 refuses v1.5 in privateDecrypt). Values wrapped by OpenSSL come back exactly; another
// key, or a block that is not v1.5, is a clear error.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { aesMaterial, createUnwrapper, wrapHex } from '../../src/crypto/key-wrap.js';
import { BundleError } from '../../src/errors.js';

const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });

describe('key unwrap', () => {
  it('gives back what publicEncrypt wrapped, many times over (random padding each time)', () => {
    const unwrapper = createUnwrapper(privateKey);
    for (let i = 0; i < 20; i++) {
      const hex = crypto.randomBytes(16).toString('hex');
      const plain = unwrapper.unwrap(wrapHex(publicKey, hex), 'user_encrypted_key');
      expect(plain.toString('ascii')).toBe(hex);
      expect(aesMaterial(plain, 'key').toString('hex')).toBe(hex);
    }
  });

  it('refuses a value wrapped for another key, and a raw block without v1.5 padding', () => {
    const unwrapper = createUnwrapper(privateKey);
    const hex = crypto.randomBytes(16).toString('hex');
    expect(() => unwrapper.unwrap(wrapHex(other.publicKey, hex), 'user_encrypted_key')).toThrow(BundleError);
    const raw = crypto.publicEncrypt(
      { key: publicKey, padding: crypto.constants.RSA_NO_PADDING },
      Buffer.concat([Buffer.from([0x00, 0x01]), Buffer.alloc(254, 0xff)]),
    );
    expect(() => unwrapper.unwrap(raw.toString('hex'), 'user_encrypted_iv')).toThrow(
      /cannot decrypt the manifest's user_encrypted_iv/,
    );
  });
});
