// Loading the user's RSA private key and X.509 certificates, with errors a person can act on.
// Certificate dates are deliberately not checked: AWS's own EC2 certificate expired in 2006 and
// is still the one bundles are encrypted to.
import crypto from 'node:crypto';
import { BundleError } from '../errors.js';

export function loadPrivateKey(pem: string, what = 'private key'): crypto.KeyObject {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    const msg = String((err as Error).message);
    if (/passphrase|encrypted|bad decrypt/i.test(msg) || /ENCRYPTED/.test(pem))
      throw new BundleError(
        `the ${what} is protected by a passphrase`,
        'write an unencrypted copy readable only by you: openssl rsa -in KEY -out KEY.plain',
      );
    throw new BundleError(`the ${what} is not a PEM RSA private key (${msg})`);
  }
  if (key.asymmetricKeyType !== 'rsa')
    throw new BundleError(
      `the ${what} is a ${key.asymmetricKeyType ?? 'non-RSA'} key; bundles need an RSA key`,
    );
  return key;
}

export function loadCertificate(pem: string, what = 'certificate'): crypto.X509Certificate {
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(pem);
  } catch (err) {
    throw new BundleError(`the ${what} is not a PEM X.509 certificate (${(err as Error).message})`);
  }
  if (cert.publicKey.asymmetricKeyType !== 'rsa')
    throw new BundleError(
      `the ${what} holds a ${cert.publicKey.asymmetricKeyType ?? 'non-RSA'} key; bundles need RSA`,
    );
  return cert;
}

/**
 * Refuses a certificate that does not belong to the private key, before any work is done. The
 * labels name the flag and the file, e.g. `certificate (-c cert.pem)`.
 */
export function checkKeyMatchesCertificate(
  key: crypto.KeyObject,
  cert: crypto.X509Certificate,
  keyWhat = 'private key (-k)',
  certWhat = 'certificate (-c)',
): void {
  if (!cert.checkPrivateKey(key))
    throw new BundleError(
      `the ${certWhat} does not match the ${keyWhat}`,
      'pass the certificate that was issued for this key',
    );
}

/** Size of the RSA modulus in bytes (the length of every wrapped value and signature). */
export function modulusBytes(key: crypto.KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (!bits) throw new BundleError('cannot read the RSA key size');
  return Math.ceil(bits / 8);
}
