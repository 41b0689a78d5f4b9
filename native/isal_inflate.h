/* One-shot raw inflate with ISA-L's igzip, when libisal.so.2 is there (see isal_inflate.c). */
#ifndef AMIBUNDLE_ISAL_INFLATE_H
#define AMIBUNDLE_ISAL_INFLATE_H
#include <stddef.h>

/* Opens libisal.so.2; 1 when usable. Safe to call more than once. */
int isal_available(void);

/* Inflates the complete raw deflate stream in[0..in_len) into out[0..capacity). Returns 0 on
 * success with the input bytes the stream used and the bytes written; 1 for bad data; 3 when the
 * output does not fit (libdeflate's result codes). */
int isal_inflate_whole(const unsigned char *in, size_t in_len, unsigned char *out, size_t capacity,
                       size_t *used_in, size_t *used_out);

#endif
