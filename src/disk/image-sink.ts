// What the restore writes the image into, whatever the disk format: the tar member's data arrives
// in ascending offsets, and every byte never written is a hole (reads as zero). Raw is the sparse
// file of restore/image-writer.ts; the others encode the same bytes as qcow2, VMDK or VHD on the
// fly, so no raw copy is ever staged. Nothing has its final name before commit().
export interface ImageSink {
  /** Where the image will be once committed. */
  readonly path: string;
  readonly bytesWritten: number;
  /** What an existing file of the final name was, when commit() replaced one (for the line saying so). */
  readonly replaced?: string | undefined;
  open(): Promise<void>;
  /** Data at `offset` of the image; offsets ascend and never overlap. `chunk` is reused once this resolves. */
  write(offset: number, chunk: Buffer): Promise<void>;
  /** Writes the format's metadata, sets mode and mtime, renames into place; returns the final path. */
  commit(): Promise<string>;
  /** Removes everything written so far. */
  discard(): Promise<void>;
}

/** `--format` values: raw is the plain sparse image; `vhd` is dynamic, `vhd-fixed` fixed. */
export const DISK_FORMATS = ['raw', 'qcow2', 'vmdk', 'vhd', 'vhd-fixed'] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];

/** Name suffix of the restored file: raw keeps the bundle's image name unchanged. */
export const DISK_FORMAT_SUFFIX: Readonly<Record<DiskFormat, string>> = {
  raw: '',
  qcow2: '.qcow2',
  vmdk: '.vmdk',
  vhd: '.vhd',
  'vhd-fixed': '.vhd',
};

export const SECTOR = 512;

export function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}
