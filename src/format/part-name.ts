// Part file names as ec2-ami-tools writes them: NAME.part.I with I zero-padded to the number of
// decimal digits of the part COUNT (so 10 parts are .part.00 … .part.09).

/** Size of every part but the last. */
export const PART_SIZE = 10 * 1024 * 1024;

/** Parts are 10 MiB; a reader refuses anything far larger, which would only exhaust memory. */
export const MAX_PART_BYTES = 64 * 1024 * 1024;

export function partSuffixWidth(count: number): number {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`part count must be >= 1, got ${count}`);
  return String(count).length;
}

export function partName(name: string, index: number, count: number): string {
  return `${name}.part.${String(index).padStart(partSuffixWidth(count), '0')}`;
}

/** Number of parts for an encrypted stream of `bundledSize` bytes (never an empty last part). */
export function partCount(bundledSize: number): number {
  return Math.max(1, Math.ceil(bundledSize / PART_SIZE));
}

export function manifestName(name: string): string {
  return `${name}.manifest.xml`;
}

/**
 * Whether `filename` is what a bundler names part `index` of `count` for `base`: BASE.part.N with
 * N the index in decimal, unpadded, 2 digits, or padded to the count's width (ec2-ami-tools).
 * Anything else is not a part of this bundle: download and delete must never touch it.
 */
export function isPartName(filename: string, base: string, index: number, count: number): boolean {
  const prefix = `${base}.part.`;
  if (!filename.startsWith(prefix)) return false;
  const n = filename.slice(prefix.length);
  if (!/^\d+$/.test(n) || Number(n) !== index) return false;
  return n.length === String(index).length || n.length === 2 || n.length === partSuffixWidth(count);
}

/** NAME of a manifest file named NAME.manifest.xml, else undefined. */
export function manifestBase(fileName: string): string | undefined {
  const suffix = '.manifest.xml';
  return fileName.endsWith(suffix) && fileName.length > suffix.length
    ? fileName.slice(0, -suffix.length)
    : undefined;
}
