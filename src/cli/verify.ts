// `amibundle verify`: every check unbundle makes, without writing the image.
import fs from 'node:fs';
import { DirPartSource } from '../parts/dir-part-source.js';
import { restoreBundle, verifyParts } from '../restore/restore.js';
import type { Command } from './command.js';
import { flag } from './flag-catalog.js';
import { readManifestFile } from '../format/manifest-file.js';
import {
  ec2KeyOption,
  manifestOption,
  noSignatureCheckOption,
  privateKeyOption,
  signatureCertOption,
  signatureEvent,
  signatureFlags,
  signatureLine,
} from './restore-flags.js';
import path from 'node:path';

export const verifyCommand: Command = {
  spec: {
    name: 'verify',
    summary:
      'Check a bundle end to end without writing anything: manifest, signature, parts, decryption, digest.',
    options: [
      manifestOption("The bundle's manifest.", true),
      privateKeyOption(
        'Private key: with it the parts are also decrypted, decompressed and untarred, and the digest checked.',
        false,
      ),
      signatureCertOption('c'),
      noSignatureCheckOption,
      flag('source', { default: "the manifest's directory" }),
      ec2KeyOption,
    ],
    examples: [
      'amibundle verify -m /mnt/bundle/image.manifest.xml -k pk.pem -c cert.pem',
      'amibundle verify -m image.manifest.xml --json',
    ],
    manual: `Checks a bundle without writing the image: the manifest is well-formed and consistent; its
signature verifies with the public half of -k (the bundler signs with that key pair), or with
-c CERT when given (needed with --ec2-key, whose key is EC2's, not the signer's), and the output
says which, or that it was not checked (--no-signature-check, or neither -k nor -c); every part
exists and matches its SHA-1 and the parts add up to bundled_size; with -k the key and IV unwrap, the stream decrypts (padding), decompresses, holds exactly one
regular file of the manifest's size, and its tar stream's SHA-1 equals the manifest digest.
The first failing check is named and the exit code is 254.`,
  },

  async run(opts, ctx) {
    const manifestPath = opts.str('manifest')!;
    const parsed = readManifestFile(manifestPath);
    const m = parsed.manifest;
    ctx.out.info(
      `manifest: ok (${m.image.name}, ${m.image.parts.length} parts, ${m.image.bundledSize} bytes)`,
    );
    const source = new DirPartSource(opts.str('source') ?? path.dirname(manifestPath));
    const { certFile, skipSignature } = signatureFlags(opts);
    const certPem = certFile ? fs.readFileSync(certFile, 'utf8') : undefined;
    const keyFile = opts.str('privatekey');
    const common = {
      manifest: parsed,
      source,
      signal: ctx.signal,
      out: ctx.out,
      skipSignature,
      ...(certPem ? { certPem } : {}),
    };
    if (!keyFile) {
      const { signature, ...r } = await verifyParts(common);
      ctx.out.info(signatureLine(signature, certFile));
      ctx.out.info(`parts: ${r.partsChecked} of ${r.partsChecked} match their SHA-1; bundled_size ok`);
      ctx.out.info('contents: not checked (give -k KEY to decrypt and check the image digest)');
      ctx.out.event({
        type: 'done',
        command: 'verify',
        ok: true,
        ...r,
        signature: signatureEvent(signature, certFile),
        contentsChecked: false,
      });
      return;
    }
    const r = await restoreBundle({
      ...common,
      privateKeyPem: fs.readFileSync(keyFile, 'utf8'),
      useEc2Key: opts.flag('ec2Key'),
    });
    ctx.out.info(signatureLine(r.signature, certFile));
    ctx.out.info(`parts: ${r.partsChecked} of ${r.partsChecked} match their SHA-1; bundled_size ok`);
    ctx.out.info(`contents: ok (one file '${r.memberName}', ${r.size} bytes, digest ${r.digest})`);
    ctx.out.event({
      type: 'done',
      command: 'verify',
      ok: true,
      partsChecked: r.partsChecked,
      signatureVerified: r.signatureVerified,
      signature: signatureEvent(r.signature, certFile),
      contentsChecked: true,
      digest: r.digest,
      size: r.size,
    });
    ctx.out.info('Bundle verified.');
  },
};
