// restoreBundle(): parts (each SHA-1 checked before use) -> AES-128-CBC⁻¹ -> decompress -> untar
// into a sparse file, hashing the tar stream on the way; the image gets its final name only when
// the digest, sizes and the signature (checked first, by default) all check out. Without a destination it is
// `verify`: every check, nothing written.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { silentReporter } from '../events.js';
import { AES_SLICE } from '../codec/aes-cbc.js';
import { chunkReleaser, createDecompressor } from '../codec/compression.js';
import { MAX_PART_BYTES } from '../format/part-name.js';
import { createAsyncSha1 } from '../io/async-sha1.js';
import { partSha1, readerChecksPart } from '../parts/part-digest.js';
import { partReadAhead } from '../parts/read-ahead.js';
import { warnIfNoAddon } from '../io/native.js';
import { aesMaterial, createUnwrapper } from '../crypto/key-wrap.js';
import { loadCertificate, loadPrivateKey } from '../crypto/keys.js';
import { verifyHex } from '../crypto/signature.js';
import { BundleError } from '../errors.js';
import type { ManifestPart } from '../format/manifest.js';
import { maxTarStreamBytes, TarMemberReader, type TarMember } from '../format/tar-reader.js';
import { createImageSink } from '../disk/create-sink.js';
import type { DiskFormat, ImageSink } from '../disk/image-sink.js';
import { sweepStaleTemps } from '../io/owned-temp.js';
import type { PartSource } from '../parts/part-source.js';
import type { RestoreOptions, RestoreResult, SignatureOutcome } from './restore-options.js';

/**
 * Checks the manifest signature before anything in the manifest is used: with the certificate
 * when one is given, else with the public half of the private key; refuses a missing or wrong
 * signature. Says what was checked, or why nothing was.
 */
export function checkSignature(
  opts: Pick<RestoreOptions, 'certPem' | 'manifest' | 'skipSignature' | 'useEc2Key'> & {
    privateKeyPem?: string;
  },
): SignatureOutcome {
  if (opts.skipSignature) return { verified: false, reason: 'disabled' };
  let publicKey: crypto.KeyObject;
  let what: string;
  let outcome: SignatureOutcome;
  if (opts.certPem) {
    publicKey = loadCertificate(opts.certPem, 'certificate (--cert)').publicKey;
    what = 'the given certificate (--cert)';
    outcome = { verified: true, with: 'cert' };
  } else if (opts.useEc2Key) return { verified: false, reason: 'ec2-key' };
  else if (opts.privateKeyPem) {
    publicKey = crypto.createPublicKey(loadPrivateKey(opts.privateKeyPem, 'private key (-k)'));
    what = 'the key of -k';
    outcome = { verified: true, with: 'private-key' };
  } else return { verified: false, reason: 'no-key' };
  const signature = opts.manifest.manifest.signature;
  if (!signature)
    throw new BundleError(
      'the manifest has no signature',
      'pass --no-signature-check only if you trust this bundle by other means',
    );
  if (!verifyHex(publicKey, opts.manifest.signedData, signature))
    throw new BundleError(
      `the manifest signature does not verify with ${what}: the manifest was altered or signed by another key`,
      opts.certPem ? undefined : "pass --cert with the signer's certificate if another key signed it",
    );
  return outcome;
}

function unwrapKeys(opts: RestoreOptions): { key: Buffer; iv: Buffer } {
  const img = opts.manifest.manifest.image;
  const unwrapper = createUnwrapper(loadPrivateKey(opts.privateKeyPem, 'private key (-k)'));
  const [keyHex, ivHex, who] = opts.useEc2Key
    ? [img.ec2EncryptedKey, img.ec2EncryptedIv, 'ec2']
    : [img.userEncryptedKey, img.userEncryptedIv, 'user'];
  if (!keyHex || !ivHex) throw new BundleError(`the manifest has no ${who}_encrypted_key/iv`);
  return {
    key: aesMaterial(unwrapper.unwrap(keyHex, `${who}_encrypted_key`), `${who}_encrypted_key`),
    iv: aesMaterial(unwrapper.unwrap(ivHex, `${who}_encrypted_iv`), `${who}_encrypted_iv`),
  };
}

/**
 * Reads parts in order with the source's read-ahead (parts/read-ahead.ts), refusing any whose
 * SHA-1 or total size is off; a part the source already checked is not hashed again
 * (parts/part-digest.ts). Each yielded buffer is valid only until the next one is asked for: its
 * memory is then reused.
 */
async function* verifiedParts(
  source: PartSource,
  parts: readonly ManifestPart[],
  bundledSize: number,
  onPart: (index: number, size: number) => void,
): AsyncGenerator<Buffer> {
  const pending: { read: Promise<Buffer>; into: Buffer }[] = [];
  const spare: Buffer[] = [];
  let next = 0;
  const ahead = partReadAhead(source);
  const fill = (): void => {
    while (pending.length < ahead && next < parts.length) {
      const p = parts[next++]!;
      const into = spare.pop() ?? Buffer.allocUnsafeSlow(MAX_PART_BYTES);
      const read = source.readPart(p.filename, p.index, into);
      read.catch(() => undefined); // surfaced when awaited below, in order
      pending.push({ read, into });
    }
  };
  let total = 0;
  for (const part of parts) {
    fill();
    const { read, into } = pending.shift()!;
    const data = await read;
    if (readerChecksPart(source, part.filename, part.digest)) {
      const sha1 = await partSha1(data);
      if (sha1 !== part.digest)
        throw new BundleError(
          `part ${part.filename} is corrupt: SHA-1 ${sha1} does not match the manifest's ${part.digest}`,
          'download or copy the part again',
        );
    }
    total += data.length;
    if (total > bundledSize)
      throw new BundleError(`the parts hold more than the manifest's bundled_size of ${bundledSize} bytes`);
    onPart(part.index, data.length);
    yield data;
    // The consumer asked for the next part, so it is done with this one (or the source never used `into`).
    spare.push(into);
  }
  if (total !== bundledSize)
    throw new BundleError(`the parts hold ${total} bytes but the manifest's bundled_size is ${bundledSize}`);
}

/**
 * The verified parts decrypted, in pieces of at most 64 KiB (AES-CBC runs 2-4x slower on larger
 * calls). Decrypting here, not in a stream stage, lets each part's buffer be reused as soon as it
 * has been decrypted.
 */
async function* decryptedParts(
  parts: AsyncGenerator<Buffer>,
  key: Buffer,
  iv: Buffer,
): AsyncGenerator<Buffer> {
  const decipher = crypto.createDecipheriv('aes-128-cbc', key, iv);
  for await (const part of parts) {
    for (let at = 0; at < part.length; at += AES_SLICE) {
      const out = decipher.update(part.subarray(at, Math.min(at + AES_SLICE, part.length)));
      if (out.length > 0) yield out;
    }
  }
  let last: Buffer;
  try {
    last = decipher.final();
  } catch {
    throw new BundleError(
      'decryption failed (bad padding): the key/IV do not match the parts, or a part is corrupt',
    );
  }
  if (last.length > 0) yield last;
}

/** Consumes the tar stream: hashes it and hands the one member's data to the image writer. */
class UntarSink extends Writable {
  readonly sha1 = createAsyncSha1();
  member: TarMember | undefined;
  writer: ImageSink | undefined;
  private readonly reader: TarMemberReader;
  /** Decompressed bytes received, refused past maxTarStreamBytes(expected.size). */
  private inflated = 0;
  private readonly maxInflated: number;

  constructor(
    destination: string | undefined,
    /** The manifest's image: the member must carry its name and size. */
    private readonly expected: { readonly name: string; readonly size: number },
    /** Called with each chunk once nothing refers to it any more (the decompressor reuses it). */
    private readonly release: (chunk: Buffer) => void = () => undefined,
    format: DiskFormat = 'raw',
    makeSink?: (member: TarMember, name: string) => ImageSink,
  ) {
    super({ highWaterMark: 4 });
    this.maxInflated = maxTarStreamBytes(expected.size);
    this.reader = new TarMemberReader({
      member: async (m) => {
        // The file written is named by the signed manifest, never by the archive.
        if (m.name !== expected.name)
          throw new BundleError(
            `the image in the bundle is named '${m.name}' but the manifest names '${expected.name}'`,
          );
        if (m.size !== expected.size)
          throw new BundleError(
            `the image in the bundle is ${m.size} bytes but the manifest says ${expected.size}`,
          );
        this.member = m;
        if (destination !== undefined || makeSink) {
          this.writer = makeSink
            ? makeSink(m, expected.name)
            : createImageSink(format, destination!, m, expected.name);
          await this.writer.open();
        }
      },
      data: async (offset, chunk) => {
        if (this.writer) await this.writer.write(offset, chunk);
      },
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.inflated += chunk.length;
    if (this.inflated > this.maxInflated) {
      done(
        new BundleError(
          `the decompressed bundle exceeds ${this.maxInflated} bytes, the most an image of ${this.expected.size} bytes needs: the bundle was tampered with`,
        ),
      );
      return;
    }
    // Hashed on the threadpool while the reader parses and writes it; released when both are done.
    Promise.all([this.sha1.update(chunk), this.reader.write(chunk)]).then(() => {
      this.release(chunk);
      done();
    }, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    try {
      this.reader.finish();
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}

export async function restoreBundle(opts: RestoreOptions): Promise<RestoreResult> {
  const started = process.hrtime.bigint();
  const out = opts.out ?? silentReporter;
  const m = opts.manifest.manifest;
  const signature = checkSignature(opts);
  const { key, iv } = unwrapKeys(opts);
  if (m.image.bundledSize % 16 !== 0)
    throw new BundleError(
      `the manifest's bundled_size ${m.image.bundledSize} is not a multiple of the AES block`,
    );

  if (opts.destination !== undefined) {
    // Checked again at the rename; refusing here spares a whole restore that could not land.
    const target = path.join(opts.destination, m.image.name);
    if ((await fs.promises.lstat(target).catch(() => undefined))?.isDirectory())
      throw new BundleError(
        `${target} is a directory; the image cannot replace it`,
        'move it away or choose another destination (-d)',
      );
  }
  if (opts.destination !== undefined) sweepStaleTemps(opts.destination, m.image.name, out);
  warnIfNoAddon(out, m.image.size);
  const decompressor = createDecompressor(m.image.compression ?? 'gzip');
  const sink = new UntarSink(
    opts.destination,
    m.image,
    chunkReleaser(decompressor),
    opts.format,
    opts.imageSink,
  );
  let done = 0;
  try {
    await pipeline(
      Readable.from(
        decryptedParts(
          verifiedParts(opts.source, m.image.parts, m.image.bundledSize, (index, size) => {
            done += size;
            out.event({ type: 'part', index, size, verified: true });
            out.progress({
              phase: opts.destination || opts.imageSink ? 'restore' : 'verify',
              done,
              total: m.image.bundledSize,
              unit: 'bytes',
            });
          }),
          key,
          iv,
        ),
        { objectMode: false, highWaterMark: 1 },
      ),
      decompressor,
      sink,
      ...(opts.signal ? [{ signal: opts.signal }] : []),
    );
    out.endProgress();
    const digest = await sink.sha1.digest();
    if (digest !== m.image.digest)
      throw new BundleError(`invalid digest, expected ${m.image.digest} received ${digest}`);
    const imagePath = sink.writer ? await sink.writer.commit() : undefined;
    if (sink.writer?.replaced) out.info(`Replaced the existing ${imagePath} (${sink.writer.replaced})`);
    return {
      ...(imagePath ? { imagePath } : {}),
      memberName: sink.member!.name,
      size: sink.member!.size,
      digest,
      partsChecked: m.image.parts.length,
      signatureVerified: signature.verified,
      signature,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
  } catch (err) {
    out.endProgress();
    await sink.writer?.discard();
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (err instanceof Error && (err as NodeJS.ErrnoException).code === 'Z_DATA_ERROR')
      throw new BundleError(
        `the decrypted data is not valid compressed data (${err.message}): wrong key or corrupt bundle`,
      );
    throw err;
  }
}

/** Checks what can be checked without the private key: signature (with a cert) and every part. */
export async function verifyParts(
  opts: Pick<RestoreOptions, 'manifest' | 'source' | 'certPem' | 'skipSignature' | 'signal' | 'out'>,
): Promise<{ partsChecked: number; signatureVerified: boolean; signature: SignatureOutcome }> {
  const out = opts.out ?? silentReporter;
  const m = opts.manifest.manifest;
  const signature = checkSignature(opts);
  let done = 0;
  for await (const part of verifiedParts(opts.source, m.image.parts, m.image.bundledSize, (index, size) => {
    done += size;
    out.event({ type: 'part', index, size, verified: true });
    out.progress({ phase: 'verify', done, total: m.image.bundledSize, unit: 'bytes' });
  })) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    void part;
  }
  out.endProgress();
  return { partsChecked: m.image.parts.length, signatureVerified: signature.verified, signature };
}
