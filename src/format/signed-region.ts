// The bytes a manifest signature covers (FORMAT.md §5.6): the first `<machine_configuration>` …
// `</machine_configuration>` substring (empty if absent) followed by the first `<image>` …
// `</image>` substring, taken from the file's own bytes, never from a re-serialisation.

function slice(doc: Buffer, open: string, close: string): Buffer | undefined {
  const start = doc.indexOf(open, 0, 'utf8');
  if (start < 0) return undefined;
  const end = doc.indexOf(close, start, 'utf8');
  if (end < 0) return undefined;
  return doc.subarray(start, end + Buffer.byteLength(close));
}

/**
 * @param withMachineConfiguration false for version-3 manifests, whose signature covers
 *   `<image>` only.
 */
export function signedRegion(doc: Buffer, withMachineConfiguration: boolean): Buffer {
  const image = slice(doc, '<image>', '</image>') ?? Buffer.alloc(0);
  if (!withMachineConfiguration) return image;
  const machine = slice(doc, '<machine_configuration>', '</machine_configuration>') ?? Buffer.alloc(0);
  return Buffer.concat([machine, image]);
}
