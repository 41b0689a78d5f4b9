// restoreBundle(): parts (each SHA-1 checked before use) -> AES-128-CBC⁻¹ -> decompress -> untar
// into a sparse file, hashing the tar stream on the way; the image gets its final name only when
// the digest, sizes and the signature (checked first, by default) all check out. Without a destination it is
// `verify`: every check, nothing written.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { silentReporter, type StageBusy } from '../events.js';
import { createInPlaceAesDecryptor, unpaddedLength } from '../codec/aes-cbc.js';
import { chunkReleaser, createDecompressor, inflateBusySeconds } from '../codec/compression.js';
import { MAX_PART_BYTES } from '../format/part-name.js';
import { createAsyncSha1 } from '../io/async-sha1.js';
import { BusyClock } from '../io/busy-clock.js';
import { feed, type ChunkReleaser } from '../io/stream-feed.js';
import { threadCpu } from '../io/thread-cpu.js';
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
 * Where a restore's wall time went: each stage's busy time (io/busy-clock.ts), measured in the
 * run itself. A stage busy for most of the wall time is the one the others wait on.
 */
class RestoreClocks {
  readonly read = new BusyClock();
  readonly verify = new BusyClock();
  readonly decrypt = new BusyClock();
  readonly hash = new BusyClock();
  readonly write = new BusyClock();
  private readonly loop = performance.eventLoopUtilization();

  report(decompressor: Duplex): StageBusy[] {
    const inflate = inflateBusySeconds(decompressor);
    const main = performance.eventLoopUtilization(this.loop).active / 1000;
    const cpu = threadCpu();
    return [
      { stage: 'read parts', busySeconds: this.read.seconds },
      { stage: 'SHA-1 of parts', busySeconds: this.verify.seconds },
      { stage: 'decrypt', busySeconds: this.decrypt.seconds },
      ...(inflate === undefined ? [] : [{ stage: 'inflate', busySeconds: inflate }]),
      { stage: 'SHA-1 of tar', busySeconds: this.hash.seconds },
      { stage: 'untar+write', busySeconds: this.write.seconds },
      { stage: 'main thread', busySeconds: main, ...(cpu ? { cpuSeconds: cpu.mainSeconds } : {}) },
      ...(cpu ? [{ stage: 'other threads', cpuSeconds: cpu.otherSeconds }] : []),
    ];
  }
}

/** Bytes whose memory goes back to be reused once `release` is called (nothing refers to it then). */
interface Lent {
  readonly data: Buffer;
  readonly release: () => void;
}

const keep = (): void => undefined;

/**
 * Reads parts in order with the source's read-ahead (parts/read-ahead.ts), refusing any whose
 * SHA-1 or total size is off; a part the source already checked is not hashed again
 * (parts/part-digest.ts). Each part's memory is reused for a later read once its consumer calls
 * `release` (or never, if it does not).
 */
async function* verifiedParts(
  source: PartSource,
  parts: readonly ManifestPart[],
  bundledSize: number,
  onPart: (index: number, size: number) => void,
  clocks = new RestoreClocks(),
): AsyncGenerator<Lent> {
  const pending: { read: Promise<Buffer>; into: Buffer }[] = [];
  const spare: Buffer[] = [];
  let next = 0;
  const ahead = partReadAhead(source);
  const fill = (): void => {
    while (pending.length < ahead && next < parts.length) {
      const p = parts[next++]!;
      const into = spare.pop() ?? Buffer.allocUnsafeSlow(MAX_PART_BYTES);
      const read = clocks.read.time(() => source.readPart(p.filename, p.index, into));
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
      const sha1 = await clocks.verify.time(() => partSha1(data));
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
    yield { data, release: () => spare.push(into) };
  }
  if (total !== bundledSize)
    throw new BundleError(`the parts hold ${total} bytes but the manifest's bundled_size is ${bundledSize}`);
}

/**
 * The verified parts decrypted in place (codec/aes-cbc.ts), the stream's PKCS#7 padding checked and
 * removed. The last 16 bytes of plaintext are always held back (copied) until more follows, since
 * the padding is in the stream's last block. A part whose length is not a multiple of the AES block
 * (no bundler writes one; the total is checked against bundled_size) is joined to the bytes left
 * over from the one before, in a copy.
 */
async function* decryptedParts(
  parts: AsyncGenerator<Lent>,
  key: Buffer,
  iv: Buffer,
  clock: BusyClock,
): AsyncGenerator<Lent> {
  const aes = createInPlaceAesDecryptor(key, iv);
  let leftover = Buffer.alloc(0);
  let held: Buffer | undefined;
  for await (const part of parts) {
    let { data, release } = part;
    if (leftover.length > 0 || data.length % 16 !== 0) {
      const joined = Buffer.concat([leftover, data]);
      release();
      release = keep;
      const aligned = joined.length - (joined.length % 16);
      leftover = Buffer.from(joined.subarray(aligned));
      data = joined.subarray(0, aligned);
    }
    if (data.length === 0) {
      release();
      continue;
    }
    await clock.time(() => aes.update(data));
    if (held) yield { data: held, release: keep };
    held = Buffer.from(data.subarray(data.length - 16));
    yield { data: data.subarray(0, data.length - 16), release };
  }
  if (!held || leftover.length > 0)
    throw new BundleError("the bundle's encrypted data is not a whole number of AES blocks");
  const plain = unpaddedLength(held);
  if (plain > 0) yield { data: held.subarray(0, plain), release: keep };
}

/** Largest slice written to the decompressor at once (its own buffers are about this size). */
const FEED_SLICE = 1024 * 1024;

/**
 * Cuts each lent buffer into views of at most FEED_SLICE for feed() (io/stream-feed.ts), and gives
 * its memory back once the decompressor has consumed the last of them (write callbacks run in
 * order, once a chunk was used or copied).
 */
class SliceFeed implements ChunkReleaser {
  private readonly lastOf = new WeakMap<Buffer, () => void>();

  async *slices(lent: AsyncIterable<Lent>): AsyncGenerator<Buffer> {
    for await (const { data, release } of lent) {
      if (data.length === 0) release();
      for (let at = 0; at < data.length; at += FEED_SLICE) {
        const slice = data.subarray(at, Math.min(at + FEED_SLICE, data.length));
        if (at + FEED_SLICE >= data.length) this.lastOf.set(slice, release);
        yield slice;
      }
    }
  }

  release(chunk: Buffer, consumed: Promise<unknown>): void {
    const release = this.lastOf.get(chunk);
    if (release) consumed.then(release, () => undefined);
  }
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
    private readonly clocks = new RestoreClocks(),
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
    Promise.all([
      this.clocks.hash.time(() => this.sha1.update(chunk)),
      this.clocks.write.time(() => this.reader.write(chunk)),
    ]).then(() => {
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
  const clocks = new RestoreClocks();
  // Every byte out of the decompressor goes through the SHA-1 compared with the manifest's digest.
  const decompressor = createDecompressor(m.image.compression ?? 'gzip', { outputDigestChecked: true });
  const sink = new UntarSink(
    opts.destination,
    m.image,
    chunkReleaser(decompressor),
    opts.format,
    opts.imageSink,
    clocks,
  );
  let done = 0;
  const onPart = (index: number, size: number): void => {
    done += size;
    out.event({ type: 'part', index, size, verified: true });
    out.progress({
      phase: opts.destination || opts.imageSink ? 'restore' : 'verify',
      done,
      total: m.image.bundledSize,
      unit: 'bytes',
    });
  };
  try {
    const downstream = pipeline(decompressor, sink, ...(opts.signal ? [{ signal: opts.signal }] : []));
    const plain = decryptedParts(
      verifiedParts(opts.source, m.image.parts, m.image.bundledSize, onPart, clocks),
      key,
      iv,
      clocks.decrypt,
    );
    const slices = new SliceFeed();
    await Promise.all([feed(slices.slices(plain), decompressor, slices, downstream), downstream]);
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
      stages: clocks.report(decompressor),
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
    part.release();
  }
  out.endProgress();
  return { partsChecked: m.image.parts.length, signatureVerified: signature.verified, signature };
}
