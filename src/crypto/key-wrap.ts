// RSA PKCS#1 v1.5 wrapping of the bundle's AES key and IV. What is wrapped is the 32-character
// lowercase hex STRING of each (FORMAT.md §4), not the raw bytes. Node 20 refuses PKCS#1 v1.5 in
// privateDecrypt (CVE-2023-46809), so unwrapping runs the raw RSA operation in OpenSSL
// (RSA_NO_PADDING) and removes the v1.5 padding here; node-forge did the same in JavaScript at
// about 0.3 s of CPU per value, a tenth of a whole restore's time.
import crypto from 'node:crypto';
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
      let plain: Buffer | undefined;
      try {
        plain = removePkcs1Padding(
          crypto.privateDecrypt({ key: privateKey, padding: crypto.constants.RSA_NO_PADDING }, padded),
        );
      } catch {
        plain = undefined;
      }
      if (!plain)
        throw new BundleError(
          `cannot decrypt the manifest's ${what} with this private key`,
          'use the key whose certificate the bundle was made for (-k), or --ec2-key for the EC2 copy',
        );
      return plain;
    },
  };
}

/**
 * The message inside an RSAES-PKCS1-v1_5 encryption block (RFC 8017 §7.2.2): 00 02, at least
 * eight non-zero padding bytes, 00, message. Undefined when the block is not one.
 */
function removePkcs1Padding(block: Buffer): Buffer | undefined {
  if (block.length < 11 || block[0] !== 0x00 || block[1] !== 0x02) return undefined;
  const end = block.indexOf(0x00, 2);
  if (end < 10) return undefined;
  return Buffer.from(block.subarray(end + 1));
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
