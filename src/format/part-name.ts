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
