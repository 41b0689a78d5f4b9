// A read disk image written into an image sink (any --format): the reader's data extents go to
// the sink in ascending order, its holes are never written, so they stay holes (or unallocated
// units) in the output. What `convert` does, and what any command that takes an image file in
// any format and writes it somewhere can reuse.
import type { Reporter } from '../../events.js';
import type { ImageSink } from '../image-sink.js';
import type { DiskImage } from './extent.js';

export interface CopyOptions {
  readonly signal?: AbortSignal;
  readonly out?: Reporter;
  /** The progress phase name. */
  readonly phase?: string;
}

/** Opens `sink`, writes every data extent of `image`, commits; discards the output on any failure. */
export async function copyImage(image: DiskImage, sink: ImageSink, opts: CopyOptions = {}): Promise<string> {
  await sink.open();
  try {
    for await (const e of image.extents()) {
      opts.signal?.throwIfAborted();
      if (e.data) await sink.write(e.offset, e.data);
      opts.out?.progress({
        phase: opts.phase ?? 'convert',
        done: e.offset + e.length,
        total: image.virtualSize,
        unit: 'bytes',
      });
    }
    opts.signal?.throwIfAborted();
    return await sink.commit();
  } catch (error) {
    await sink.discard();
    throw error;
  } finally {
    opts.out?.endProgress();
  }
}
