/* ISA-L's igzip inflates about twice as fast as libdeflate 1.14 on the machines we measured (and
 * four times zlib), so pieces are inflated with it when libisal.so.2 (Debian's libisal2) is there;
 * at its level 3 it also compresses 3-4 times faster than libdeflate's level 1 (1.12x gzip -9's
 * size instead of 1.09x), which makes it the engine for --fast. It is opened at run time; its
 * header (libisal-dev) is needed only to build, for the layout of its structs. Without either,
 * libdeflate does the work. */
#include "isal.h"

#if __has_include(<isa-l/igzip_lib.h>)
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <isa-l/igzip_lib.h>

static void (*init_fn)(struct inflate_state *);
static int (*stateless_fn)(struct inflate_state *);
static void (*deflate_init_fn)(struct isal_zstream *);
static int (*deflate_fn)(struct isal_zstream *);
static int loaded = -1;

int isal_available(void) {
  if (loaded >= 0) return loaded;
  void *h = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL);
  if (h) {
    *(void **)&init_fn = dlsym(h, "isal_inflate_init");
    *(void **)&stateless_fn = dlsym(h, "isal_inflate_stateless");
    *(void **)&deflate_init_fn = dlsym(h, "isal_deflate_stateless_init");
    *(void **)&deflate_fn = dlsym(h, "isal_deflate_stateless");
  }
  loaded = h && init_fn && stateless_fn && deflate_init_fn && deflate_fn;
  return loaded;
}

int isal_inflate_whole(const unsigned char *in, size_t in_len, unsigned char *out, size_t capacity,
                       size_t *used_in, size_t *used_out, uint32_t *crc) {
  /* The state holds a 64 KiB history buffer and Huffman tables: too big for a pool thread's stack. */
  static __thread struct inflate_state *state;
  if (!state && !(state = malloc(sizeof *state))) return 1;
  if (in_len > UINT32_MAX || capacity > UINT32_MAX) return 3;
  init_fn(state);
  /* Raw deflate in, and the gzip CRC-32 of the output computed as it is written (no trailer read):
   * the caller combines the pieces' CRCs instead of hashing every byte again on the event loop. */
  state->crc_flag = ISAL_GZIP_NO_HDR;
  state->next_in = (uint8_t *)in;
  state->avail_in = (uint32_t)in_len;
  state->next_out = out;
  state->avail_out = (uint32_t)capacity;
  int rc = stateless_fn(state);
  if (rc == ISAL_OUT_OVERFLOW) return 3;
  if (rc != ISAL_DECOMP_OK || state->block_state != ISAL_BLOCK_FINISH) return 1;
  /* Whole bytes still in igzip's bit buffer were read ahead, not used. */
  *used_in = in_len - state->avail_in - (size_t)(state->read_in_length / 8);
  *used_out = state->total_out;
  *crc = state->crc;
  return 0;
}

int isal_deflate_whole(const unsigned char *in, size_t in_len, int level, int last, unsigned char *out,
                       size_t capacity, size_t *written) {
  static __thread struct isal_zstream *stream;
  static __thread unsigned char *level_buf;
  if (!stream && !(stream = malloc(sizeof *stream))) return -1;
  if (!level_buf && !(level_buf = malloc(ISAL_DEF_LVL3_DEFAULT))) return -1;
  if (level < 0 || level > ISAL_DEF_MAX_LEVEL || in_len > UINT32_MAX || capacity > UINT32_MAX) return -1;
  /* Stale hash entries from this thread's last block would make the output depend on which pool
   * thread ran before (never wrong, but not reproducible): start every block from a clean buffer. */
  memset(level_buf, 0, ISAL_DEF_LVL3_DEFAULT);
  memset(stream, 0, sizeof *stream); /* the init does not set every field stateless reads */
  deflate_init_fn(stream);
  stream->level = (uint32_t)level;
  stream->level_buf = level_buf;
  stream->level_buf_size = ISAL_DEF_LVL3_DEFAULT; /* the largest any level asks for */
  stream->end_of_stream = last ? 1 : 0;
  stream->flush = last ? NO_FLUSH : FULL_FLUSH;
  stream->gzip_flag = IGZIP_DEFLATE;
  stream->hist_bits = 0; /* the full 32 KiB window */
  stream->next_in = (uint8_t *)in;
  stream->avail_in = (uint32_t)in_len;
  stream->next_out = out;
  stream->avail_out = (uint32_t)capacity;
  if (deflate_fn(stream) != COMP_OK || stream->avail_in != 0) return -1;
  *written = stream->total_out;
  return 0;
}

#else
int isal_available(void) { return 0; }

int isal_deflate_whole(const unsigned char *in, size_t in_len, int level, int last, unsigned char *out,
                       size_t capacity, size_t *written) {
  (void)in, (void)in_len, (void)level, (void)last, (void)out, (void)capacity, (void)written;
  return -1;
}

int isal_inflate_whole(const unsigned char *in, size_t in_len, unsigned char *out, size_t capacity,
                       size_t *used_in, size_t *used_out, uint32_t *crc) {
  (void)in, (void)in_len, (void)out, (void)capacity, (void)used_in, (void)used_out, (void)crc;
  return 1;
}
#endif
