/* The mark that ends every piece of amibundle's gzip body but the last (the TypeScript side's copy
 * is src/codec/piece-mark.ts; test/unit/layout.test.ts checks that the two agree).
 *
 * A piece is the unit compressed and inflated on its own (1 MiB by default). Each non-final piece
 * ends byte-aligned with two empty stored blocks: the first one's three header bits sit in the
 * padding of the byte before, so only its LEN/NLEN show (00 00 ff ff, what a sync flush ends
 * with); the second is whole (a zero header byte, then 00 00 ff ff). The nine bytes together are
 * what a reader searches for to cut the member into pieces it can inflate in parallel. */
#ifndef AMIBUNDLE_PIECE_MARK_H
#define AMIBUNDLE_PIECE_MARK_H

#define PIECE_MARK_LEN 9
/* Initializer for an unsigned char[PIECE_MARK_LEN]. */
#define PIECE_MARK_BYTES {0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff}
/* The first EMPTY_STORED_LEN_NLEN bytes are an empty stored block's LEN/NLEN alone; the remaining
 * bytes (from that offset on) are one whole empty stored block. */
#define EMPTY_STORED_LEN_NLEN 4

#endif
