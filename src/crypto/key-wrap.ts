// RSA PKCS#1 v1.5 wrapping of the bundle's AES key and IV. What is wrapped is the 32-character
// lowercase hex STRING of each (FORMAT.md §4), not the raw bytes. Unwrapping uses node-forge
// because Node 20 refuses PKCS#1 v1.5 in privateDecrypt (CVE-2023-46809).
import crypto from 'node:crypto';
import forge from 'node-forge';
import { BundleError } from '../errors.js';
import { modulusBytes } from './keys.js';

export function wrapHex(publicKey: crypto.KeyObject, hexValue: string): string {
  return crypto
    .publicEncrypt(
      { key: publicKey, padding: crypto.constants.RSA_PKCS1_PADDING },
      Buffer.from(hexValue, 'ascii'),
    )
    .toString('hex');
}

/** A private key ready for PKCS#1 v1.5 decryption. */
export interface Unwrapper {
  unwrap(ciphertextHex: string, what: string): Buffer;
}

export function createUnwrapper(privateKey: crypto.KeyObject): Unwrapper {
  const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pkcs1);
  const k = modulusBytes(privateKey);
  return {
    unwrap(ciphertextHex: string, what: string): Buffer {
      let hexText = ciphertextHex.trim();
      if (hexText.length % 2 === 1) hexText = `0${hexText}`;
      const bytes = Buffer.from(hexText, 'hex');
      if (bytes.length > k || bytes.length === 0)
        throw new BundleError(
          `the manifest's ${what} is ${bytes.length} bytes but the key is ${k}: was the bundle made for another key?`,
        );
      const padded = Buffer.concat([Buffer.alloc(k - bytes.length), bytes]);
      let plain: string;
      try {
        plain = forgeKey.decrypt(padded.toString('binary'), 'RSAES-PKCS1-V1_5');
      } catch {
        throw new BundleError(
          `cannot decrypt the manifest's ${what} with this private key`,
          'use the key whose certificate the bundle was made for (-k), or --ec2-key for the EC2 copy',
        );
      }
      return Buffer.from(plain, 'binary');
    },
  };
}

/**
 * The AES key or IV from an unwrapped value: 32 hex characters as ec2-ami-tools writes, or (a
 * harmless extension) 16 raw bytes.
 */
export function aesMaterial(unwrapped: Buffer, what: string): Buffer {
  const asText = unwrapped.toString('latin1').trim();
  if (/^[0-9a-fA-F]{32}$/.test(asText)) return Buffer.from(asText, 'hex');
  if (unwrapped.length === 16) return Buffer.from(unwrapped);
  throw new BundleError(`the manifest's ${what} does not decrypt to a 128-bit AES value`);
}
