// What to-ebs uploads, whatever it came from: an image's size, what identifies its content (for
// the resume journal), and a run() that streams it into an image sink in ascending offsets.
// Image files are opened by their headers through disk/read/ (raw, qcow2, VMDK, VHD: the guest's
// bytes, holes never read, never a container uploaded as if it were the disk); bundles go through
// the signature-checking restore.
import fs from 'node:fs';
import type { ImageSink } from '../disk/image-sink.js';
import type { ParsedManifest } from '../format/manifest-reader.js';
import { openDiskImage } from '../disk/read/detect.js';
import type { PartSource } from '../parts/part-source.js';
import { restoreBundle } from '../restore/restore.js';
import type { RestoreResult } from '../restore/restore-options.js';
import type { Reporter } from '../events.js';

export interface ImageSource {
  /** What identifies the content: a bundle's digest, a file's size, mtime and inode. */
  readonly id: string;
  readonly size: number;
  /** From the manifest, when there is one. */
  readonly architecture?: string;
  /** The file's disk format, for an image file. */
  readonly format?: string;
  /** Whether run() reports its own progress (the restore does). */
  readonly reportsProgress: boolean;
  /** Opens the sink, writes the image in ascending offsets, commits (discards on failure). */
  run(sink: ImageSink): Promise<void>;
}

/**
 * An image file of any format disk/read/ knows by its headers (raw, qcow2, VMDK, VHD): the
 * guest's bytes go up, never the container's. Holes are not read.
 */
export async function diskImageSource(file: string, signal?: AbortSignal): Promise<ImageSource> {
  const st = fs.statSync(file);
  const image = await openDiskImage(file);
  await image.close();
  return {
    id: `file:${image.format}:${st.size}:${Math.trunc(st.mtimeMs)}:${st.ino}`,
    size: image.virtualSize,
    format: image.format,
    reportsProgress: false,
    async run(sink) {
      const disk = await openDiskImage(file);
      try {
        await sink.open();
        for await (const extent of disk.extents()) {
          signal?.throwIfAborted();
          if (extent.data) await sink.write(extent.offset, extent.data);
        }
        await sink.commit();
      } catch (err) {
        await sink.discard();
        throw err;
      } finally {
        await disk.close();
      }
    },
  };
}

export interface BundleSourceOptions {
  readonly manifest: ParsedManifest;
  readonly parts: PartSource;
  readonly privateKeyPem: string;
  readonly useEc2Key?: boolean;
  readonly certPem?: string;
  readonly skipSignature?: boolean;
  readonly out: Reporter;
  readonly signal?: AbortSignal;
}

/** A bundle, restored through restoreBundle() (signature, part digests, image digest checked). */
export function bundleImageSource(
  opts: BundleSourceOptions,
  onRestored: (result: RestoreResult) => void,
): ImageSource {
  const image = opts.manifest.manifest.image;
  const arch = opts.manifest.manifest.machineConfiguration?.architecture;
  return {
    id: `bundle:${image.name}:${image.size}:${image.digest}`,
    size: image.size,
    ...(arch !== undefined ? { architecture: arch } : {}),
    reportsProgress: true,
    async run(sink) {
      const result = await restoreBundle({
        manifest: opts.manifest,
        source: opts.parts,
        privateKeyPem: opts.privateKeyPem,
        ...(opts.useEc2Key ? { useEc2Key: true } : {}),
        ...(opts.certPem !== undefined ? { certPem: opts.certPem } : {}),
        ...(opts.skipSignature ? { skipSignature: true } : {}),
        imageSink: () => sink,
        out: opts.out,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      onRestored(result);
    },
  };
}
