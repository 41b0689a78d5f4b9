// What to-ebs uploads, whatever it came from: an image's size, what identifies its content (for
// the resume journal), and a run() that streams it into an image sink in ascending offsets.
// Raw files are read by their data extents (holes are never read); bundles go through the
// signature-checking restore; qcow2, VMDK and VHD files are recognised by their headers and
// refused, never uploaded as if their container bytes were the disk.
import fs from 'node:fs';
import type { ImageSink } from '../disk/image-sink.js';
import { BundleError } from '../errors.js';
import type { ParsedManifest } from '../format/manifest-reader.js';
import { dataExtents } from '../io/extents.js';
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
  /** Whether run() reports its own progress (the restore does). */
  readonly reportsProgress: boolean;
  /** Opens the sink, writes the image in ascending offsets, commits (discards on failure). */
  run(sink: ImageSink): Promise<void>;
}

const READ_CHUNK = 1 << 20;

/** A disk container format by its header (or VHD's footer), if the file is one. */
export function containerFormat(file: string, size: number): string | undefined {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const n = fs.readSync(fd, head, 0, 512, 0);
    if (n >= 4 && head.readUInt32BE(0) === 0x514649fb) return 'qcow2';
    if (n >= 4 && head.subarray(0, 4).toString('latin1') === 'KDMV') return 'VMDK';
    if (head.subarray(0, n).toString('latin1').startsWith('# Disk DescriptorFile'))
      return 'VMDK (descriptor)';
    if (head.subarray(0, 8).toString('latin1') === 'conectix') return 'VHD';
    if (size >= 512) {
      const foot = Buffer.alloc(8);
      fs.readSync(fd, foot, 0, 8, size - 512);
      if (foot.toString('latin1') === 'conectix') return 'VHD';
    }
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

export function rawImageSource(file: string, signal?: AbortSignal): ImageSource {
  const st = fs.statSync(file);
  if (!st.isFile()) throw new BundleError(`${file} is not a regular file`);
  const format = containerFormat(file, st.size);
  if (format !== undefined)
    throw new BundleError(
      `${file} is a ${format} image, not a raw disk: uploading its container bytes would make a corrupt snapshot`,
      `convert it first: qemu-img convert -O raw ${file} ${file}.raw, then to-ebs the .raw file`,
    );
  return {
    id: `file:${st.size}:${Math.trunc(st.mtimeMs)}:${st.ino}`,
    size: st.size,
    reportsProgress: false,
    async run(sink) {
      const fd = await fs.promises.open(file, 'r');
      try {
        await sink.open();
        const buf = Buffer.allocUnsafe(READ_CHUNK);
        for (const extent of await dataExtents(fd.fd, st.size)) {
          for (let at = extent.offset; at < extent.offset + extent.length;) {
            signal?.throwIfAborted();
            const want = Math.min(READ_CHUNK, extent.offset + extent.length - at);
            const { bytesRead } = await fd.read(buf, 0, want, at);
            if (bytesRead === 0) throw new BundleError(`${file} shrank while it was read`);
            await sink.write(at, buf.subarray(0, bytesRead));
            at += bytesRead;
          }
        }
        await sink.commit();
      } catch (err) {
        await sink.discard();
        throw err;
      } finally {
        await fd.close();
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
