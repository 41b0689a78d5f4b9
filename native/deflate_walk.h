/* Finding a deflate stream's final block, and reopening the stream there (see deflate_walk.c). */
#ifndef AMIBUNDLE_DEFLATE_WALK_H
#define AMIBUNDLE_DEFLATE_WALK_H
#include <stddef.h>
#include <stdint.h>

/* Builds the fixed Huffman tables; call once before any walk (module load). 0 on success. */
int deflate_walk_init(void);

/* Walks the raw deflate stream in p[0..len). On success returns 0 with the bit offset of the final
 * block's header and the bit offset just after its end-of-block code; -1 if the data is not a
 * complete, valid deflate stream. */
int deflate_walk(const uint8_t *p, size_t len, uint64_t *final_header_bit, uint64_t *end_bit);

/* Clears the final block's BFINAL bit and appends two empty stored blocks (the piece mark,
 * piece_mark.h), so that another piece may follow. p must have room for 10 more bytes past the
 * stream's last byte. Returns the new length. */
size_t deflate_unfinalize(uint8_t *p, uint64_t final_header_bit, uint64_t end_bit);

#endif
