// SHA-1 whose updates run on libuv's threadpool through the native addon (OpenSSL's code, from the
// node binary), so hashing a restored tar stream overlaps with parsing and writing it instead of
// holding the event loop. Without the addon it is crypto.createHash, synchronously.
import crypto from 'node:crypto';
import { nativeAddon } from './native.js';

export interface AsyncSha1 {
  /** Queues `data`; resolves once it is hashed (until then the caller must not change it). */
  update(data: Uint8Array): Promise<void>;
  /** The hex digest of everything updated; the hash is then spent. */
  digest(): Promise<string>;
}

export function createAsyncSha1(): AsyncSha1 {
  const addon = nativeAddon();
  if (!addon?.sha1Create || !addon.sha1Update || !addon.sha1Digest) {
    const hash = crypto.createHash('sha1');
    return {
      update: (data) => {
        hash.update(data);
        return Promise.resolve();
      },
      digest: () => Promise.resolve(hash.digest('hex')),
    };
  }
  const native = addon as Required<Pick<typeof addon, 'sha1Create' | 'sha1Update' | 'sha1Digest'>>;
  const ctx = native.sha1Create();
  // Updates are chained: the addon requires one at a time per context, in order.
  let tail: Promise<void> = Promise.resolve();
  return {
    update(data) {
      tail = tail.then(() => native.sha1Update(ctx, data));
      return tail;
    },
    async digest() {
      await tail;
      return native.sha1Digest(ctx);
    },
  };
}

/**
 * SHA-1 of one buffer, on the event loop: for callers that hold one small buffer and nothing to
 * overlap with (an S3 body being checked, a part already on disk). Kept here beside the
 * asynchronous form so that a part's digest is computed one way, in one module.
 */
export function sha1HexSync(data: Uint8Array): string {
  return crypto.createHash('sha1').update(data).digest('hex');
}

/** SHA-1 of one buffer, hashed off the event loop when the addon is there. */
export async function sha1Hex(data: Uint8Array): Promise<string> {
  const hash = createAsyncSha1();
  await hash.update(data);
  return hash.digest();
}
