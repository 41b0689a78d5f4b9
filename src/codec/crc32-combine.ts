// CRC-32 (gzip's) of A followed by B from the CRCs of A and B and the length of B, so that pieces
// inflated in parallel each report their own CRC from the thread that inflated them and the event
// loop never reads the output to hash it. The arithmetic: appending len(B) bytes multiplies A's
// remainder by x^(8 len(B)) modulo the CRC polynomial, in the reflected bit order CRC-32 uses;
// x^(2^k) is kept for every k, so one combine costs at most 64 multiplications of 32 steps.

/** The CRC-32 polynomial, reflected. */
const POLY = 0xedb88320;
/** x^0 in the reflected order (the top bit stands for the lowest power). */
const ONE = 0x80000000;

/** a * b modulo the polynomial, both reflected. */
function multiply(a: number, b: number): number {
  let product = 0;
  for (let bit = ONE; bit !== 0 && a !== 0; bit >>>= 1) {
    if ((a & bit) !== 0) {
      product ^= b;
      a = (a & ~bit) >>> 0;
    }
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return product >>> 0;
}

/** X_POW[k] = x^(2^k) modulo the polynomial; x^1 is 0x40000000 reflected. */
const X_POW = new Uint32Array(64);
X_POW[0] = 0x40000000;
for (let k = 1; k < 64; k++) X_POW[k] = multiply(X_POW[k - 1]!, X_POW[k - 1]!);

/** x^(8 n) modulo the polynomial: n bytes of shift. */
function byteShift(n: number): number {
  let result = ONE;
  for (let k = 3; n > 0; k++, n = Math.floor(n / 2)) if (n % 2 === 1) result = multiply(X_POW[k]!, result);
  return result;
}

/** The CRC-32 of A then B, given crc(A), crc(B) and B's length in bytes. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (!Number.isSafeInteger(lengthB) || lengthB < 0) throw new RangeError(`bad length ${lengthB}`);
  return (multiply(byteShift(lengthB), crcA >>> 0) ^ crcB) >>> 0;
}
