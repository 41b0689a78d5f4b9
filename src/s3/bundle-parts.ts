// A bundle's parts as the transfer commands see them: in the reference's order (by file name,
// then index), with the size bound a part must respect.
import type { ParsedManifest } from '../format/manifest-reader.js';
import type { ManifestPart } from '../format/manifest.js';

export function orderedParts(parsed: ParsedManifest): ManifestPart[] {
  return [...parsed.manifest.image.parts].sort((a, b) =>
    a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : a.index - b.index,
  );
}

/** Longest common prefix of the part names: narrows the listing a resume needs. */
export function commonPrefix(names: readonly string[]): string {
  if (names.length === 0) return '';
  let prefix = names[0]!;
  for (const n of names) {
    let i = 0;
    while (i < prefix.length && i < n.length && prefix[i] === n[i]) i++;
    prefix = prefix.slice(0, i);
  }
  return prefix;
}
