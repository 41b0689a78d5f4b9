// Manifest signatures: RSASSA-PKCS1-v1_5 with SHA-1 over the signed region, hex encoded.
import crypto from 'node:crypto';

export function signHex(privateKey: crypto.KeyObject, data: Buffer): string {
  return crypto.sign('sha1', data, privateKey).toString('hex');
}

export function verifyHex(publicKey: crypto.KeyObject, data: Buffer, signatureHex: string): boolean {
  let hexText = signatureHex.trim();
  if (!/^[0-9a-fA-F]*$/.test(hexText) || hexText.length === 0) return false;
  if (hexText.length % 2 === 1) hexText = `0${hexText}`;
  try {
    return crypto.verify('sha1', data, publicKey, Buffer.from(hexText, 'hex'));
  } catch {
    return false;
  }
}
