// Where the parts of a manifest are, in its own bytes: the root element and the byte range of
// each of its direct children. The signature covers `<machine_configuration>` and `<image>`
// (FORMAT.md §5.6), so the bytes that are verified and the values that are used must come from
// the same nodes: a reader that took the first `<image>` text anywhere could be shown a signed
// pair hidden inside another element while using an unsigned `<image>` at the root. This
// scanner tracks depth, so a node is found only where it is, and the reader refuses any layout
// but one `image` (and at most one `machine_configuration`) directly under `manifest`.
import { BundleError } from '../errors.js';

export interface ElementRange {
  readonly name: string;
  /** Offset of the `<` of the start tag. */
  readonly start: number;
  /** Offset just past the `>` of the end tag (or of a self-closing start tag). */
  readonly end: number;
}

export interface ManifestLayout {
  readonly rootName: string;
  /** Direct children of the root element, in document order. */
  readonly children: readonly ElementRange[];
  /** Names of every element below the direct children (depth 2 and deeper). */
  readonly deeperNames: ReadonlySet<string>;
}

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const QUOTE = 0x22;
const APOS = 0x27;

function startsWith(doc: Buffer, at: number, literal: string): boolean {
  return doc.toString('latin1', at, at + literal.length) === literal;
}

function skipPast(doc: Buffer, from: number, literal: string): number {
  const end = doc.indexOf(literal, from, 'latin1');
  if (end < 0) throw new BundleError(`manifest is not well-formed XML: '${literal}' missing`);
  return end + literal.length;
}

function isNameByte(b: number): boolean {
  // ASCII name characters; any byte of a multi-byte UTF-8 sequence is >= 0x80.
  return (
    b >= 0x80 ||
    (b >= 0x61 && b <= 0x7a) ||
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x30 && b <= 0x39) ||
    b === 0x5f ||
    b === 0x3a ||
    b === 0x2d ||
    b === 0x2e
  );
}

function readName(doc: Buffer, at: number): string {
  let end = at;
  while (end < doc.length && isNameByte(doc[end]!)) end++;
  if (end === at) throw new BundleError('manifest is not well-formed XML: a tag without a name');
  return doc.toString('utf8', at, end);
}

/**
 * Scans the manifest's bytes (already known to be well-formed XML without a DTD) and returns the
 * root's name and its direct children's byte ranges. Comments, CDATA, processing instructions
 * and quoted attribute values are skipped, so markup-like text inside them is never taken for
 * an element.
 */
export function manifestLayout(doc: Buffer): ManifestLayout {
  const stack: { name: string; start: number }[] = [];
  const children: ElementRange[] = [];
  const deeperNames = new Set<string>();
  let rootName: string | undefined;
  let rootClosed = false;
  let i = 0;
  while (i < doc.length) {
    const lt = doc.indexOf(LT, i);
    if (lt < 0) break;
    if (startsWith(doc, lt, '<?')) i = skipPast(doc, lt + 2, '?>');
    else if (startsWith(doc, lt, '<!--')) i = skipPast(doc, lt + 4, '-->');
    else if (startsWith(doc, lt, '<![CDATA[')) i = skipPast(doc, lt + 9, ']]>');
    else if (doc[lt + 1] === 0x21) throw new BundleError('manifest contains a DTD or markup declaration');
    else if (doc[lt + 1] === SLASH) {
      const name = readName(doc, lt + 2);
      const gt = doc.indexOf(GT, lt);
      if (gt < 0) throw new BundleError('manifest is not well-formed XML: an end tag is not closed');
      const open = stack.pop();
      if (!open || open.name !== name)
        throw new BundleError(`manifest is not well-formed XML: </${name}> does not close an open element`);
      i = gt + 1;
      if (stack.length === 1) children.push({ name, start: open.start, end: i });
      if (stack.length === 0) rootClosed = true;
    } else {
      const name = readName(doc, lt + 1);
      // Find the tag's closing `>`, stepping over quoted attribute values (which may hold `>`).
      let j = lt + 1 + Buffer.byteLength(name);
      let quote = 0;
      while (j < doc.length) {
        const b = doc[j]!;
        if (quote !== 0) {
          if (b === quote) quote = 0;
        } else if (b === QUOTE || b === APOS) quote = b;
        else if (b === GT) break;
        j++;
      }
      if (j >= doc.length)
        throw new BundleError('manifest is not well-formed XML: a start tag is not closed');
      const selfClosing = doc[j - 1] === SLASH;
      i = j + 1;
      if (rootClosed) throw new BundleError('manifest has more than one root element');
      if (stack.length === 0) rootName = name;
      else if (stack.length >= 2) deeperNames.add(name);
      if (selfClosing) {
        if (stack.length === 1) children.push({ name, start: lt, end: i });
        if (stack.length === 0) rootClosed = true;
      } else stack.push({ name, start: lt });
    }
  }
  if (rootName === undefined || !rootClosed || stack.length !== 0)
    throw new BundleError('manifest is not well-formed XML: no complete root element');
  return { rootName, children, deeperNames };
}

/** The one direct child of the root named `name`, if any; two are refused. */
export function onlyChild(layout: ManifestLayout, name: string): ElementRange | undefined {
  const found = layout.children.filter((c) => c.name === name);
  if (found.length > 1)
    throw new BundleError(`invalid manifest: it has ${found.length} <${name}> elements; a manifest has one`);
  return found[0];
}

/** Root children a manifest may have; each at most once. */
const KNOWN_CHILDREN = ['version', 'bundler', 'machine_configuration', 'image', 'signature'];

/** Elements whose place decides what is signed: found anywhere but under the root, refused. */
const PLACED = ['manifest', 'machine_configuration', 'image', 'signature'];

export interface SignedLayout {
  readonly layout: ManifestLayout;
  readonly image: ElementRange;
  readonly machineConfiguration?: ElementRange;
  /** The bytes the signature covers: machine_configuration's range (if any), then image's. */
  readonly signedData: Buffer;
}

/**
 * The manifest's shape as the signature needs it: root `manifest`; `version`, `bundler`,
 * `machine_configuration`, `image` and `signature` at most once each and nothing else directly
 * under it; exactly one `image`; none of the signed elements anywhere deeper. Version 3
 * signs `<image>` only, so it may not have a `machine_configuration` at all (it would
 * be used unsigned); other versions must have exactly one.
 */
export function signedLayout(doc: Buffer): SignedLayout {
  const layout = manifestLayout(doc);
  if (layout.rootName !== 'manifest')
    throw new BundleError(`invalid manifest: the root element is <${layout.rootName}>, not <manifest>`);
  for (const c of layout.children)
    if (!KNOWN_CHILDREN.includes(c.name))
      throw new BundleError(
        `invalid manifest: unknown element <${c.name}> under <manifest> (only ${KNOWN_CHILDREN.join(', ')})`,
      );
  for (const name of PLACED)
    if (layout.deeperNames.has(name))
      throw new BundleError(`invalid manifest: a <${name}> element is nested where it does not belong`);
  const image = onlyChild(layout, 'image');
  if (!image) throw new BundleError('invalid manifest: no <image> element');
  const machine = onlyChild(layout, 'machine_configuration');
  onlyChild(layout, 'bundler');
  onlyChild(layout, 'signature');
  const versionRange = onlyChild(layout, 'version');
  const version = versionRange ? elementText(doc, versionRange) : undefined;
  if (isVersion3(version)) {
    if (machine)
      throw new BundleError(
        'invalid manifest: version 3 has no <machine_configuration> (its signature would not cover it)',
      );
  } else if (!machine) throw new BundleError('invalid manifest: no <machine_configuration> element');
  const imageBytes = doc.subarray(image.start, image.end);
  // ec2-ami-tools signs the text from the literal `<machine_configuration>` to its end tag, which a
  // self-closed `<machine_configuration/>` does not contain: it signs nothing for it (FORMAT.md
  // §5.6). Such an element holds no value, so leaving it out of the signed bytes uses nothing
  // unsigned, and a manifest migrate-manifest writes that way verifies with the Ruby tools too.
  const machineSigned = machine && doc[machine.end - 2] !== SLASH;
  return {
    layout,
    image,
    ...(machine ? { machineConfiguration: machine } : {}),
    signedData: machineSigned
      ? Buffer.concat([doc.subarray(machine.start, machine.end), imageBytes])
      : imageBytes,
  };
}

/** Version 3 as the reference reads it: a number whose leading digits are 3 (Ruby `to_i`). */
export function isVersion3(version: string | undefined): boolean {
  return version !== undefined && /^\s*\+?0*3(?!\d)/.test(version);
}

/** Raw text between an element's tags (for `<version>`, which holds text only). */
function elementText(doc: Buffer, range: ElementRange): string {
  const body = doc.toString('utf8', range.start, range.end);
  const open = body.indexOf('>');
  const close = body.lastIndexOf('</');
  return open < 0 || close < open ? '' : body.slice(open + 1, close);
}
