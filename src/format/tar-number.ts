// Numeric fields of tar headers as GNU tar writes them: zero-padded octal with a NUL when the
// value fits in (width - 1) digits, else GNU base-256 (first byte 0x80, big-endian binary).

/** Writes `value` into `buf[offset, offset+width)` the way GNU tar 1.34 does in gnu format. */
export function writeTarNumber(buf: Buffer, offset: number, width: number, value: number | bigint): void {
  const v = BigInt(value);
  if (v < 0n) throw new RangeError(`tar numbers cannot be negative: ${v}`);
  const maxOctal = 8n ** BigInt(width - 1) - 1n;
  if (v <= maxOctal) {
    buf.write(v.toString(8).padStart(width - 1, '0'), offset, width - 1, 'latin1');
    buf[offset + width - 1] = 0;
    return;
  }
  if (v >= 2n ** BigInt(8 * width - 1))
    throw new RangeError(`value ${v} does not fit a ${width}-byte tar field`);
  let rest = v;
  for (let i = width - 1; i >= 0; i--) {
    buf[offset + i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  buf[offset] = buf[offset]! | 0x80;
}

/**
 * Reads a numeric field: octal (leading spaces/zeros, ended by NUL or space) or base-256.
 * Returns undefined for malformed fields so callers can name the field in their error.
 */
export function readTarNumber(buf: Buffer, offset: number, width: number): number | undefined {
  const first = buf[offset]!;
  if (first & 0x80) {
    if (first === 0xff) return undefined; // negative base-256: never valid for our fields
    let v = BigInt(first & 0x7f);
    for (let i = 1; i < width; i++) v = (v << 8n) | BigInt(buf[offset + i]!);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
  }
  const text = buf.toString('latin1', offset, offset + width);
  const m = /^ *([0-7]*)[ \0]*$/.exec(text);
  if (!m) return undefined;
  if (m[1] === '') return 0;
  const v = parseInt(m[1]!, 8);
  return Number.isSafeInteger(v) ? v : undefined;
}
