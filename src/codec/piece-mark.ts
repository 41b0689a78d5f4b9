// The mark that ends every piece of amibundle's gzip body but the last: two empty stored deflate
// blocks, the first showing only its LEN/NLEN (00 00 ff ff), the second whole (00 00 00 ff ff).
// The native encoders write it after every independent piece (libdeflate and ISA-L; their copy is
// native/piece_mark.h), and parallel-gunzip searches for it to cut a member into pieces it inflates
// in parallel. zlib's pieces lean on the one before (a 32 KiB dictionary) and end with a single
// sync flush, so they carry no mark. test/unit/layout.test.ts checks the two copies agree.

/** The nine bytes between two pieces. */
export const PIECE_MARK: Buffer = Buffer.from([0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff]);
