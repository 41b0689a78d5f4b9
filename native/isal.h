/* One-shot raw deflate and inflate with ISA-L's igzip, when libisal.so.2 is there (see isal.c). */
#ifndef AMIBUNDLE_ISAL_H
#define AMIBUNDLE_ISAL_H
#include <stddef.h>
#include <stdint.h>

/* Opens libisal.so.2; 1 when usable. Safe to call more than once. */
int isal_available(void);

/* Inflates the complete raw deflate stream in[0..in_len) into out[0..capacity). Returns 0 on
 * success with the input bytes the stream used, the bytes written and their CRC-32 (gzip's); 1 for
 * bad data; 3 when the output does not fit (libdeflate's result codes). */
int isal_inflate_whole(const unsigned char *in, size_t in_len, unsigned char *out, size_t capacity,
                       size_t *used_in, size_t *used_out, uint32_t *crc);

/* Compresses in[0..in_len) on its own (no history before it) at ISA-L level 0..3 into
 * out[0..capacity). Unless `last`, the stream is left open and byte-aligned after an empty stored
 * block (a full flush), so another block can follow. 0 on success with the bytes written; -1 if
 * it did not fit or ISA-L refused. */
int isal_deflate_whole(const unsigned char *in, size_t in_len, int level, int last, unsigned char *out,
                       size_t capacity, size_t *written);

/* Exports inflateStreamCreate/inflateStreamRun (isal_stream.c) when libisal.so.2 loads; 0 also
 * when it does not (nothing exported), -1 on a Node-API failure. */
#include <node_api.h>
int register_isal_stream(napi_env env, napi_value exports);

#endif
