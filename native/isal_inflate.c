/* ISA-L's igzip inflates about twice as fast as libdeflate 1.14 on the machines we measured (and
 * four times zlib), so pieces are inflated with it when libisal.so.2 (Debian's libisal2) is there.
 * It is opened at run time; its header (libisal-dev) is needed only to build, for the layout of
 * struct inflate_state. Without either, libdeflate does the work. */
#include "isal_inflate.h"

#if __has_include(<isa-l/igzip_lib.h>)
#include <dlfcn.h>
#include <stdlib.h>
#include <isa-l/igzip_lib.h>

static void (*init_fn)(struct inflate_state *);
static int (*stateless_fn)(struct inflate_state *);
static int loaded = -1;

int isal_available(void) {
  if (loaded >= 0) return loaded;
  void *h = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL);
  if (h) {
    *(void **)&init_fn = dlsym(h, "isal_inflate_init");
    *(void **)&stateless_fn = dlsym(h, "isal_inflate_stateless");
  }
  loaded = h && init_fn && stateless_fn;
  return loaded;
}

int isal_inflate_whole(const unsigned char *in, size_t in_len, unsigned char *out, size_t capacity,
                       size_t *used_in, size_t *used_out) {
  /* The state holds a 64 KiB history buffer and Huffman tables: too big for a pool thread's stack. */
  static __thread struct inflate_state *state;
  if (!state && !(state = malloc(sizeof *state))) return 1;
  if (in_len > UINT32_MAX || capacity > UINT32_MAX) return 3;
  init_fn(state);
  state->crc_flag = ISAL_DEFLATE;
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
  return 0;
}

#else
int isal_available(void) { return 0; }

int isal_inflate_whole(const unsigned char *in, size_t in_len, unsigned char *out, size_t capacity,
                       size_t *used_in, size_t *used_out) {
  (void)in, (void)in_len, (void)out, (void)capacity, (void)used_in, (void)used_out;
  return 1;
}
#endif
