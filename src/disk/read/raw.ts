// A raw image (or the data part of a fixed VHD): the file's bytes are the guest's. Holes are
// found with SEEK_DATA/SEEK_HOLE (io/extents.ts), so a sparse file is read only where it holds
// data; a block device is read whole.
import { dataExtents } from '../../io/extents.js';
import type { DiskFormat } from '../image-sink.js';
import { type DiskImage, type ImageExtent, MAX_CHUNK, normalized } from './extent.js';
import { type ImageFile, readRun } from './image-file.js';

/** The first `virtualSize` bytes of `file` as the guest (a fixed VHD stops before its footer). */
export function openRaw(file: ImageFile, format: DiskFormat = 'raw', virtualSize = file.size): DiskImage {
  file.check(0, virtualSize, format === 'raw' ? 'image' : 'fixed VHD data');
  const extents = async function* (): AsyncIterable<ImageExtent> {
    const found = file.stat.isFile()
      ? await dataExtents(file.fd, virtualSize)
      : [{ offset: 0, length: virtualSize }];
    for (const e of found)
      yield* readRun(file, { guest: e.offset, host: e.offset, length: e.length }, MAX_CHUNK, 'image data');
  };
  return {
    path: file.path,
    format,
    virtualSize,
    extents: () => normalized(extents(), virtualSize),
    close: () => file.close(),
  };
}
