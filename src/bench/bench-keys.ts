// A throw-away RSA key and self-signed certificate for the benchmark's own bundles, written into
// the benchmark's private temporary directory (0600) and deleted with it. They protect nothing.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';

const generateKeyPair = promisify(crypto.generateKeyPair);

export interface BenchKeys {
  readonly keyFile: string;
  /** Serves as the user certificate and as the stand-in EC2 certificate. */
  readonly certFile: string;
}

export async function writeBenchKeys(dir: string): Promise<BenchKeys> {
  const { privateKey, publicKey } = await generateKeyPair('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const name = [{ name: 'commonName', value: 'amibundle bench (throw-away)' }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  const keyFile = path.join(dir, 'bench-key.pem');
  const certFile = path.join(dir, 'bench-cert.pem');
  await fs.promises.writeFile(keyFile, keyPem, { mode: 0o600, flag: 'wx' });
  await fs.promises.writeFile(certFile, forge.pki.certificateToPem(cert), { mode: 0o600, flag: 'wx' });
  return { keyFile, certFile };
}
