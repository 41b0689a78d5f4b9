// `amibundle verify`: every check unbundle makes, without writing the image.
import fs from 'node:fs';
import { DirPartSource } from '../restore/dir-source.js';
import { restoreBundle, verifyParts } from '../restore/restore.js';
import type { Command } from './command.js';
import { readManifestFile } from '../io/manifest-file.js';
import {
  ec2KeyOption,
  manifestOption,
  privateKeyOption,
  signatureCertOption,
  sourceOption,
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
      sourceOption("the manifest's directory"),
      ec2KeyOption,
    ],
    examples: [
      'amibundle verify -m /mnt/bundle/image.manifest.xml -k pk.pem -c cert.pem',
      'amibundle verify -m image.manifest.xml --json',
    ],
    manual: `Checks a bundle without writing the image: the manifest is well-formed and consistent; with -c the
signature verifies; every part exists and matches its SHA-1 and the parts add up to bundled_size;
with -k the key and IV unwrap, the stream decrypts (padding), decompresses, holds exactly one
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
    const certFile = opts.str('verifyCert');
    const certPem = certFile ? fs.readFileSync(certFile, 'utf8') : undefined;
    const keyFile = opts.str('privatekey');
    const common = {
      manifest: parsed,
      source,
      signal: ctx.signal,
      out: ctx.out,
      ...(certPem ? { certPem } : {}),
    };
    if (!keyFile) {
      const r = await verifyParts(common);
      ctx.out.info(`signature: ${r.signatureVerified ? 'ok' : 'not checked (give -c CERT)'}`);
      ctx.out.info(`parts: ${r.partsChecked} of ${r.partsChecked} match their SHA-1; bundled_size ok`);
      ctx.out.info('contents: not checked (give -k KEY to decrypt and check the image digest)');
      ctx.out.event({ type: 'done', command: 'verify', ok: true, ...r, contentsChecked: false });
      return;
    }
    const r = await restoreBundle({
      ...common,
      privateKeyPem: fs.readFileSync(keyFile, 'utf8'),
      useEc2Key: opts.flag('ec2Key'),
    });
    ctx.out.info(`signature: ${r.signatureVerified ? 'ok' : 'not checked (give -c CERT)'}`);
    ctx.out.info(`parts: ${r.partsChecked} of ${r.partsChecked} match their SHA-1; bundled_size ok`);
    ctx.out.info(`contents: ok (one file '${r.memberName}', ${r.size} bytes, digest ${r.digest})`);
    ctx.out.event({
      type: 'done',
      command: 'verify',
      ok: true,
      partsChecked: r.partsChecked,
      signatureVerified: r.signatureVerified,
      contentsChecked: true,
      digest: r.digest,
      size: r.size,
    });
    ctx.out.info('Bundle verified.');
  },
};
