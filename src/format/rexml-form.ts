// The bytes Ruby's REXML writes when it re-serialises a parsed manifest (FORMAT.md §5.7): tags
// rewritten with single-quoted attributes and no spare blanks, `<x></x>` and `<x />` as `<x/>`,
// CR/CRLF in text as LF; text, entities, comments and CDATA kept verbatim. ec2-migrate-manifest
// verifies signatures over this form, so a manifest signed over it verifies here too.

const NAME = '[A-Za-z_:][\\w.:-]*';
const START_TAG = new RegExp(`<(${NAME})((?:\\s+${NAME}\\s*=\\s*(?:"[^"]*"|'[^']*'))*)\\s*(/?)>`, 'y');
const END_TAG = new RegExp(`</(${NAME})\\s*>`, 'y');
const ATTRIBUTE = new RegExp(`(${NAME})\\s*=\\s*(?:"([^"]*)"|'([^']*)')`, 'g');
const EMPTY_PAIR = new RegExp(`<(${NAME})((?: ${NAME}='[^']*')*)></\\1>`, 'g');

function canonicalStartTag(name: string, attrs: string, selfClosing: boolean): string {
  let out = `<${name}`;
  for (const m of attrs.matchAll(ATTRIBUTE)) {
    const value = (m[2] ?? m[3] ?? '').replace(/'/g, '&apos;');
    out += ` ${m[1]}='${value}'`;
  }
  return `${out}${selfClosing ? '/' : ''}>`;
}

/** Passes through a construct that REXML keeps as it is, if one starts at `i`. */
function verbatimEnd(doc: string, i: number): number | undefined {
  for (const [open, close] of [
    ['<!--', '-->'],
    ['<![CDATA[', ']]>'],
    ['<?', '?>'],
  ] as const) {
    if (doc.startsWith(open, i)) {
      const end = doc.indexOf(close, i + open.length);
      return end < 0 ? doc.length : end + close.length;
    }
  }
  return undefined;
}

export function rexmlForm(doc: string): string {
  let out = '';
  let i = 0;
  while (i < doc.length) {
    const lt = doc.indexOf('<', i);
    const textEnd = lt < 0 ? doc.length : lt;
    out += doc.slice(i, textEnd).replace(/\r\n?/g, '\n');
    if (lt < 0) break;
    i = lt;
    const verbatim = verbatimEnd(doc, i);
    if (verbatim !== undefined) {
      out += doc.slice(i, verbatim);
      i = verbatim;
      continue;
    }
    START_TAG.lastIndex = i;
    const start = START_TAG.exec(doc);
    if (start) {
      out += canonicalStartTag(start[1]!, start[2]!, start[3] === '/');
      i = START_TAG.lastIndex;
      continue;
    }
    END_TAG.lastIndex = i;
    const end = END_TAG.exec(doc);
    if (end) {
      out += `</${end[1]}>`;
      i = END_TAG.lastIndex;
      continue;
    }
    // Not a tag this form knows (the reader has already refused malformed XML): keep it.
    out += '<';
    i += 1;
  }
  return out.replace(EMPTY_PAIR, '<$1$2/>');
}
