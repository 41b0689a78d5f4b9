// A fresh RSA key and a self-signed X.509 certificate for signing bundles, for people who have no
// certificate (IAM stopped issuing them; EC2 never checks who issued the bundle certificate).
// Node generates the key (native, fast); node-forge builds and signs the certificate.
import crypto from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { UsageError } from '../errors.js';

export const KEY_SIZES = [2048, 3072, 4096] as const;
export type KeySize = (typeof KEY_SIZES)[number];

export interface SelfSignedOptions {
  readonly bits: KeySize;
  /** Common name of the subject (and issuer). */
  readonly commonName: string;
  /** Validity from now, in days. */
  readonly days: number;
  /** Start of validity; defaults to now (a minute early, to tolerate clock skew). */
  readonly now?: Date;
}

export interface SelfSigned {
  /** PKCS#8 PEM. */
  readonly privateKeyPem: string;
  readonly certificatePem: string;
  readonly notAfter: Date;
  /** SHA-256 fingerprint, colon-separated hex, as openssl and Node print it. */
  readonly fingerprint256: string;
}

const generateKeyPair = promisify(crypto.generateKeyPair);

export function checkCommonName(cn: string): string {
  const name = cn.trim();
  if (name === '' || name.length > 64 || /[\x00-\x1f\x7f]/.test(name))
    throw new UsageError(
      `--subject has invalid value '${cn}': give a common name of 1 to 64 printable characters`,
    );
  return name;
}

/** A positive serial of 16 random bytes (RFC 5280 allows up to 20; the top bit must be clear). */
function randomSerialHex(): string {
  const bytes = crypto.randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

export async function createSelfSigned(opts: SelfSignedOptions): Promise<SelfSigned> {
  const commonName = checkCommonName(opts.commonName);
  if (!Number.isInteger(opts.days) || opts.days < 1 || opts.days > 36500)
    throw new UsageError(`--days has invalid value '${opts.days}': give 1 to 36500`);
  const { privateKey, publicKey } = await generateKeyPair('rsa', {
    modulusLength: opts.bits,
    publicExponent: 0x10001,
  });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();

  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = randomSerialHex();
  const start = new Date((opts.now ?? new Date()).getTime() - 60_000);
  const notAfter = new Date(start.getTime() + opts.days * 86_400_000);
  cert.validity.notBefore = start;
  cert.validity.notAfter = notAfter;
  const name = [{ name: 'commonName', value: commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  // The certificate both verifies manifest signatures and wraps the bundle key (RSA encryption).
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKeyPem), forge.md.sha256.create());
  const certificatePem = forge.pki.certificateToPem(cert);

  const x509 = new crypto.X509Certificate(certificatePem);
  if (!x509.checkPrivateKey(privateKey)) throw new Error('generated certificate does not match its key');
  return { privateKeyPem, certificatePem, notAfter, fingerprint256: x509.fingerprint256 };
}
