// Text from outside (manifest values, file names from argv, S3 keys, error messages that quote
// them) must never drive the terminal: a raw ESC or BEL in an image name could rewrite what the
// user sees, a delete prompt included. Manifests holding control characters are refused by the
// reader; everything printed goes through printable() as a second line of defence.

/**
 * C0 controls, DEL and C1 controls: what a manifest value may never hold. (TAB, LF and CR are
 * C0 too: no manifest value needs them.)
 */
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** Control characters, plus the bidirectional overrides and line separators that reorder text. */
const UNPRINTABLE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escape(ch: string): string {
  const code = ch.codePointAt(0)!;
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** The text with every control character shown as \xNN (TAB, harmless, is kept). */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escape);
}

/** JSON text with DEL and C1 controls written as \u escapes too (JSON.stringify leaves them raw). */
export function printableJson(json: string): string {
  return json.replace(
    /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (ch) => `\\u${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`,
  );
}
