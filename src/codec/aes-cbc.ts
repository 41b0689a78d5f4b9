// AES-128-CBC with PKCS#7 padding as streams, matching `openssl enc -aes-128-cbc -K … -iv …`
// (no salt header). Input is fed to OpenSSL in slices of at most 64 KiB: on megabyte-sized
// chunks the cipher runs 2-4x slower here.
import crypto from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { BundleError } from '../errors.js';

/** Largest piece handed to OpenSSL at once. */
export const AES_SLICE = 64 * 1024;

class CipherStream extends Transform {
  constructor(
    private readonly cipher: crypto.Cipher | crypto.Decipher,
    private readonly decrypting: boolean,
  ) {
    super({ highWaterMark: 4 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    for (let at = 0; at < chunk.length; at += AES_SLICE) {
      const out = this.cipher.update(chunk.subarray(at, Math.min(at + AES_SLICE, chunk.length)));
      if (out.length > 0) this.push(out);
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    try {
      const out = this.cipher.final();
      if (out.length > 0) this.push(out);
      done();
    } catch {
      done(
        this.decrypting
          ? new BundleError(
              'decryption failed (bad padding): the key/IV do not match the parts, or a part is corrupt',
            )
          : new Error('encryption failed'),
      );
    }
  }
}

export function createAesEncryptor(key: Buffer, iv: Buffer): Transform {
  return new CipherStream(crypto.createCipheriv('aes-128-cbc', key, iv), false);
}

export function createAesDecryptor(key: Buffer, iv: Buffer): Transform {
  return new CipherStream(crypto.createDecipheriv('aes-128-cbc', key, iv), true);
}
