// `amibundle keygen`: an RSA private key and a self-signed certificate for -k/-c, both written
// mode 0600 atomically, never over an existing file unless --force.
import fs from 'node:fs';
import path from 'node:path';
import { createSelfSigned, KEY_SIZES, type KeySize } from '../crypto/self-signed.js';
import { UsageError } from '../errors.js';
import { existsError, requireParentDirectory, writeFileAtomic } from '../io/atomic-file.js';
import type { Command } from './command.js';
import { flag } from './flag-catalog.js';

const DEFAULT_KEY = './pk-amibundle.pem';
const DEFAULT_CERT = './cert-amibundle.pem';
const DEFAULT_SUBJECT = 'amibundle bundle signing key';
const FORCE_HINT = 'pass --force to replace it, or choose another name with -k/-c';

export const keygenCommand: Command = {
  spec: {
    name: 'keygen',
    summary: 'Create an RSA private key and a self-signed X.509 certificate for signing bundles (-k/-c).',
    options: [
      // Same flags as the bundling commands' -k/-c, but files to write, not to read.
      flag('privatekey', {
        name: 'keyOut',
        metavar: 'KEY_OUT',
        path: undefined,
        defaultValue: DEFAULT_KEY,
        help: 'Where to write the private key (PKCS#8 PEM, mode 0600).',
      }),
      flag('cert', {
        name: 'certOut',
        metavar: 'CERT_OUT',
        path: undefined,
        defaultValue: DEFAULT_CERT,
        help: 'Where to write the certificate (PEM, mode 0600).',
      }),
      {
        name: 'days',
        long: 'days',
        kind: 'int',
        metavar: 'N',
        defaultValue: 3650,
        help: 'Validity of the certificate in days (1-36500; no tool checks it, but others may).',
      },
      {
        name: 'subject',
        long: 'subject',
        kind: 'string',
        metavar: 'CN',
        defaultValue: DEFAULT_SUBJECT,
        default: `'${DEFAULT_SUBJECT}'`,
        help: 'Common name of the certificate (subject and issuer).',
      },
      {
        name: 'bits',
        long: 'bits',
        kind: 'string',
        metavar: 'BITS',
        choices: KEY_SIZES.map(String),
        defaultValue: '2048',
        help: 'RSA key size.',
      },
      {
        name: 'force',
        long: 'force',
        short: 'f',
        kind: 'flag',
        help: 'Replace existing files (each is swapped in whole; never a moment readable by others).',
      },
    ],
    examples: [
      'amibundle keygen && amibundle bundle-image -i disk.img -u 123456789012 -k pk-amibundle.pem -c cert-amibundle.pem',
      'amibundle keygen -k ~/.ec2/pk.pem -c ~/.ec2/cert.pem --bits 4096 --days 730 --subject "build host 7"',
    ],
    manual: `Creates what the bundling commands need for -k and -c when you have no X.509 certificate (AWS IAM
no longer issues signing certificates, and EC2 does not check who issued the one in a bundle):

  * an RSA private key (2048 bits unless --bits), written as PKCS#8 PEM;
  * a self-signed X.509 certificate for it (SHA-256 signature, --days of validity, --subject as
    its common name), written as PEM.

Both files are created with mode 0600 under a temporary name and then moved into place, so no
other user can read the key at any moment and no half-written file is ever visible. An existing
file is never replaced unless --force is given; without it, nothing is written when either name
is taken.

The certificate is public: the bundle key is also encrypted to it and the manifest signature is
checked with it. The private key is what unbundle, verify and migrate-manifest need to open or
re-sign your bundles: keep it, and keep it secret.`,
  },

  async run(opts, ctx) {
    const keyOut = opts.str('keyOut')!;
    const certOut = opts.str('certOut')!;
    const force = opts.flag('force');
    if (keyOut === '' || certOut === '') throw new UsageError('-k and -c need a file name');
    if (path.resolve(keyOut) === path.resolve(certOut))
      throw new UsageError(
        `-k ${keyOut} and -c ${certOut} name the same file; the key and the certificate need one each`,
      );
    // Error lines name the flag and the file: "the private key (-k) key.pem already exists".
    const keyWhat = 'private key (-k)';
    const certWhat = 'certificate (-c)';
    const bits = Number(opts.str('bits')) as KeySize;
    requireParentDirectory(keyOut, keyWhat);
    requireParentDirectory(certOut, certWhat);
    if (!force) {
      // Checked up front so that nothing is written when either name is taken; the writes below
      // still refuse to clobber, should a file appear meanwhile.
      if (fs.existsSync(keyOut)) throw existsError(keyOut, keyWhat, FORCE_HINT);
      if (fs.existsSync(certOut)) throw existsError(certOut, certWhat, FORCE_HINT);
    }
    ctx.out.event({ type: 'start', command: 'keygen', bits });
    ctx.out.debug(`generating an RSA-${bits} key`);
    const made = await createSelfSigned({
      bits,
      commonName: opts.str('subject')!,
      days: opts.int('days')!,
    });
    const write = { mode: 0o600, overwrite: force };
    await writeFileAtomic(keyOut, made.privateKeyPem, write, FORCE_HINT, keyWhat);
    try {
      await writeFileAtomic(certOut, made.certificatePem, write, FORCE_HINT, certWhat);
    } catch (err) {
      // A key without its certificate is useless and would block the next run.
      if (!force) fs.rmSync(keyOut, { force: true });
      throw err;
    }
    ctx.out.info(`Wrote private key ${keyOut} (RSA ${bits} bits, PKCS#8 PEM, mode 0600)`);
    ctx.out.info(
      `Wrote certificate ${certOut} (self-signed, valid until ${made.notAfter.toISOString().slice(0, 10)}, SHA-256 ${made.fingerprint256})`,
    );
    ctx.out.info('Use them to bundle, e.g.:');
    ctx.out.info(`  amibundle bundle-image -i IMAGE -u ACCOUNT_NUMBER -k ${keyOut} -c ${certOut}`);
    ctx.out.info(`  amibundle unbundle -m NAME.manifest.xml -k ${keyOut}`);
    ctx.out.info('Keep the private key secret and safe: only it can open your bundles.');
    ctx.out.event({
      type: 'done',
      command: 'keygen',
      privateKey: path.resolve(keyOut),
      certificate: path.resolve(certOut),
      bits,
      notAfter: made.notAfter.toISOString(),
      fingerprint256: made.fingerprint256,
    });
  },
};
