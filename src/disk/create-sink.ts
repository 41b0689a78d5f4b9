// Picks the image sink for a `--format`: the restore hands every format the same stream of
// (offset, data) writes, so choosing the format is choosing the sink.
import path from 'node:path';
import type { TarMember } from '../format/tar-reader.js';
import { ImageWriter } from '../restore/image-writer.js';
import { DISK_FORMAT_SUFFIX, type DiskFormat, type ImageSink } from './image-sink.js';
import { Qcow2Sink } from './qcow2.js';
import { VhdDynamicSink, VhdFixedSink } from './vhd.js';
import { VmdkSink } from './vmdk.js';

/** The sink writing `member` as DESTINATION/NAME (raw) or DESTINATION/NAME.<format>; NAME is the manifest's. */
export function createImageSink(
  format: DiskFormat,
  destination: string,
  member: TarMember,
  name = member.name,
): ImageSink {
  return createImageSinkAt(format, path.join(destination, name + DISK_FORMAT_SUFFIX[format]), member);
}

/** The sink writing `member` to exactly `finalPath`, whatever its name ends in (`convert IN OUT`). */
export function createImageSinkAt(format: DiskFormat, finalPath: string, member: TarMember): ImageSink {
  const destination = path.dirname(finalPath);
  const name = path.basename(finalPath);
  switch (format) {
    case 'raw':
      return new ImageWriter(destination, member, name);
    case 'qcow2':
      return new Qcow2Sink(finalPath, member);
    case 'vmdk':
      return new VmdkSink(finalPath, member);
    case 'vhd':
      return new VhdDynamicSink(finalPath, member);
    case 'vhd-fixed':
      return new VhdFixedSink(destination, member, name);
  }
}
