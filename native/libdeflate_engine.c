/* Independent deflate pieces with libdeflate, on libuv's threadpool.
 *
 * libdeflate compresses 2-3 times faster than zlib at the same ratio, but only whole buffers: no
 * preset dictionary, no sync flush. So each piece of the gzip body (1 MiB, the unit
 * src/codec/parallel-gzip.ts names) is compressed on its own (it loses little without its
 * predecessor's 32 KiB), then reopened with deflate_walk so the next piece can follow in the same
 * member, and ended with the piece mark (piece_mark.h). That mark lets a reader find piece
 * boundaries by search and inflate pieces in parallel, each from scratch — a guess it verifies: a
 * piece must decode alone, to its exact end.
 *
 * Level 1 goes to ISA-L's fastest good level instead, and pieces are inflated with ISA-L, when
 * libisal.so.2 is there (isal.c).
 *
 * libdeflate is opened at run time (libdeflate.so.0, Debian's libdeflate0); without it these
 * functions are simply absent and the TypeScript side uses zlib. Prototypes are declared here from
 * libdeflate's documented API so no development headers are needed. */
#include "libdeflate_engine.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deflate_walk.h"
#include "isal.h"
#include "napi_util.h"
#include "piece_mark.h"

struct libdeflate_compressor;
struct libdeflate_decompressor;

enum { LD_SUCCESS = 0, LD_BAD_DATA = 1, LD_SHORT_OUTPUT = 2, LD_INSUFFICIENT_SPACE = 3 };

static struct {
  struct libdeflate_compressor *(*alloc_compressor)(int);
  size_t (*compress)(struct libdeflate_compressor *, const void *, size_t, void *, size_t);
  size_t (*compress_bound)(struct libdeflate_compressor *, size_t);
  struct libdeflate_decompressor *(*alloc_decompressor)(void);
  int (*decompress_ex)(struct libdeflate_decompressor *, const void *, size_t, void *, size_t, size_t *,
                       size_t *);
  uint32_t (*crc32)(uint32_t, const void *, size_t);
} ld;

static int load_libdeflate(void) {
  void *h = dlopen("libdeflate.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!h) return 0;
  *(void **)&ld.alloc_compressor = dlsym(h, "libdeflate_alloc_compressor");
  *(void **)&ld.compress = dlsym(h, "libdeflate_deflate_compress");
  *(void **)&ld.compress_bound = dlsym(h, "libdeflate_deflate_compress_bound");
  *(void **)&ld.alloc_decompressor = dlsym(h, "libdeflate_alloc_decompressor");
  *(void **)&ld.decompress_ex = dlsym(h, "libdeflate_deflate_decompress_ex");
  *(void **)&ld.crc32 = dlsym(h, "libdeflate_crc32");
  return ld.alloc_compressor && ld.compress && ld.compress_bound && ld.alloc_decompressor && ld.decompress_ex &&
         ld.crc32;
}

/* One compressor per level and one decompressor per pool thread, kept for the thread's life:
 * allocating them per piece would cost more than small pieces take to compress. */
static __thread struct libdeflate_compressor *thread_compressors[13];
static __thread struct libdeflate_decompressor *thread_decompressor;


/* ---- deflatePiece ---- */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref;
  const unsigned char *input;
  size_t input_len;
  int level;
  int last;
  unsigned char *out;
  size_t out_len;
  const char *error;
} deflate_piece_job;

/* What ISA-L writes at a full flush: an empty stored block's LEN/NLEN at the end (the mark's
 * first EMPTY_STORED_LEN_NLEN bytes); the rest of the mark is one whole empty stored block. */
static const unsigned char PIECE_MARK[PIECE_MARK_LEN] = PIECE_MARK_BYTES;

static void deflate_piece_execute(napi_env env, void *data) {
  (void)env;
  deflate_piece_job *job = data;
  if (job->level == 1 && isal_available()) {
    /* --fast: ISA-L's best level, a full flush (open, byte-aligned, independent), then one more
     * empty stored block to make the piece mark. Stored blocks bound the expansion. */
    size_t cap = job->input_len + job->input_len / 16 + 1024;
    size_t n = 0;
    if (!(job->out = malloc(cap + 16))) {
      job->error = "out of memory";
      return;
    }
    if (isal_deflate_whole(job->input, job->input_len, 3, job->last, job->out, cap, &n) != 0) {
      job->error = "ISA-L deflate failed";
      return;
    }
    if (!job->last) {
      /* A full flush leaves the stream byte-aligned: after an empty stored block of its own, or
       * after a stored block of data when the input did not compress. One or two more empty
       * stored blocks (00 00 00 ff ff each) complete the mark. */
      const unsigned char *empty_stored = PIECE_MARK + EMPTY_STORED_LEN_NLEN;
      const size_t empty_len = PIECE_MARK_LEN - EMPTY_STORED_LEN_NLEN;
      if (n < EMPTY_STORED_LEN_NLEN ||
          memcmp(job->out + n - EMPTY_STORED_LEN_NLEN, PIECE_MARK, EMPTY_STORED_LEN_NLEN) != 0) {
        memcpy(job->out + n, empty_stored, empty_len);
        n += empty_len;
      }
      memcpy(job->out + n, empty_stored, empty_len);
      n += empty_len;
    }
    job->out_len = n;
    return;
  }
  struct libdeflate_compressor **c = &thread_compressors[job->level];
  if (!*c && !(*c = ld.alloc_compressor(job->level))) {
    job->error = "libdeflate: cannot allocate a compressor";
    return;
  }
  /* Room for the whole stream plus what deflate_unfinalize appends. */
  size_t cap = ld.compress_bound(*c, job->input_len) + 16;
  if (!(job->out = malloc(cap))) {
    job->error = "out of memory";
    return;
  }
  size_t n = ld.compress(*c, job->input, job->input_len, job->out, cap - 16);
  if (n == 0) {
    job->error = "libdeflate: output larger than its bound";
    return;
  }
  if (!job->last) {
    uint64_t final_header, end;
    if (deflate_walk(job->out, n, &final_header, &end) != 0) {
      job->error = "libdeflate produced a stream the block walker cannot follow";
      return;
    }
    n = deflate_unfinalize(job->out, final_header, end);
  }
  job->out_len = n;
}

static void deflate_piece_complete(napi_env env, napi_status status, void *data) {
  deflate_piece_job *job = data;
  napi_value result;
  if (status != napi_ok) {
    reject_with(env, job->deferred, "deflatePiece was cancelled");
  } else if (job->error) {
    reject_with(env, job->deferred, job->error);
  } else if (malloced_buffer(env, job->out, job->out_len, &result) == napi_ok) {
    job->out = NULL;
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    reject_with(env, job->deferred, "cannot create the output buffer");
  }
  free(job->out);
  napi_delete_reference(env, job->input_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* deflatePiece(input: Uint8Array, level: 1..12, last: boolean): Promise<Buffer> */
static napi_value deflate_piece(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3)
    return throw_type(env, "deflatePiece(input, level, last)");
  const unsigned char *input;
  size_t input_len;
  int32_t level;
  bool last;
  if (!get_bytes(env, argv[0], &input, &input_len)) return throw_type(env, "input must be a Uint8Array");
  if (napi_get_value_int32(env, argv[1], &level) != napi_ok || level < 1 || level > 12)
    return throw_type(env, "level must be 1..12");
  if (napi_get_value_bool(env, argv[2], &last) != napi_ok) return throw_type(env, "last must be a boolean");
  deflate_piece_job *job = calloc(1, sizeof *job);
  if (!job) return throw_type(env, "out of memory");
  job->input = input;
  job->input_len = input_len;
  job->level = level;
  job->last = last;
  if (napi_create_reference(env, argv[0], 1, &job->input_ref) != napi_ok) {
    free(job);
    return NULL;
  }
  return queue_promise_job(env, "amibundle.deflatePiece", deflate_piece_execute, deflate_piece_complete, job,
                           &job->work, &job->deferred);
}

/* ---- inflatePiece ---- */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref;
  napi_ref output_ref;
  const unsigned char *input;
  size_t input_len;
  unsigned char *output;
  size_t capacity;
  int final;
  size_t written;
  size_t consumed;
  uint32_t crc;
  int result;
  const char *error;
} inflate_piece_job;

static void inflate_piece_execute(napi_env env, void *data) {
  (void)env;
  inflate_piece_job *job = data;
  const int use_isal = isal_available();
  if (!use_isal && !thread_decompressor && !(thread_decompressor = ld.alloc_decompressor())) {
    job->error = "libdeflate: cannot allocate a decompressor";
    return;
  }
  const unsigned char *in = job->input;
  size_t in_len = job->input_len;
  unsigned char *copy = NULL;
  if (!job->final) {
    /* A piece ends without a final block; the inflaters need one, so a copy gets an empty one
     * (BFINAL=1, fixed Huffman, end-of-block: the bits 1 10 0000000 -> 03 00). */
    if (!(copy = malloc(in_len + 2))) {
      job->error = "out of memory";
      return;
    }
    memcpy(copy, in, in_len);
    copy[in_len] = 0x03;
    copy[in_len + 1] = 0x00;
    in = copy;
    in_len += 2;
  }
  size_t used_in = 0, used_out = 0;
  uint32_t crc = 0;
  job->result = use_isal ? isal_inflate_whole(in, in_len, job->output, job->capacity, &used_in, &used_out, &crc)
                         : ld.decompress_ex(thread_decompressor, in, in_len, job->output, job->capacity,
                                            &used_in, &used_out);
  free(copy);
  /* The piece's own CRC-32, here where its output is still in cache (the caller combines them). */
  if (!use_isal && job->result == LD_SUCCESS) crc = ld.crc32(0, job->output, used_out);
  job->crc = crc;
  job->written = used_out;
  job->consumed = job->final ? used_in : (used_in >= 2 ? used_in - 2 : 0);
  /* Not one of our pieces unless the appended end block was reached exactly at the end. */
  if (job->result == LD_SUCCESS && !job->final && used_in != in_len) job->result = LD_BAD_DATA;
}

static void inflate_piece_complete(napi_env env, napi_status status, void *data) {
  inflate_piece_job *job = data;
  if (status != napi_ok) {
    reject_with(env, job->deferred, "inflatePiece was cancelled");
  } else if (job->error) {
    reject_with(env, job->deferred, job->error);
  } else {
    napi_value result, ok, consumed, written;
    napi_create_object(env, &result);
    napi_get_boolean(env, job->result == LD_SUCCESS, &ok);
    napi_set_named_property(env, result, "ok", ok);
    napi_create_double(env, (double)job->consumed, &consumed);
    napi_set_named_property(env, result, "consumed", consumed);
    napi_create_double(env, job->result == LD_SUCCESS ? (double)job->written : 0.0, &written);
    napi_set_named_property(env, result, "written", written);
    napi_value crc;
    napi_create_uint32(env, job->crc, &crc);
    napi_set_named_property(env, result, "crc", crc);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->input_ref);
  napi_delete_reference(env, job->output_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* inflatePiece(input: Uint8Array, final: boolean, output: Uint8Array):
 *   Promise<{ ok: boolean, consumed: number, written: number }>
 * The caller provides (and may reuse) the output buffer: fresh memory per piece costs page faults. */
static napi_value inflate_piece(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3)
    return throw_type(env, "inflatePiece(input, final, output)");
  const unsigned char *input, *output;
  size_t input_len, capacity;
  bool final;
  if (!get_bytes(env, argv[0], &input, &input_len)) return throw_type(env, "input must be a Uint8Array");
  if (napi_get_value_bool(env, argv[1], &final) != napi_ok) return throw_type(env, "final must be a boolean");
  if (!get_bytes(env, argv[2], &output, &capacity)) return throw_type(env, "output must be a Uint8Array");
  inflate_piece_job *job = calloc(1, sizeof *job);
  if (!job) return throw_type(env, "out of memory");
  job->input = input;
  job->input_len = input_len;
  job->output = (unsigned char *)output;
  job->capacity = capacity;
  job->final = final;
  if (napi_create_reference(env, argv[0], 1, &job->input_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &job->output_ref) != napi_ok) {
    free(job);
    return NULL;
  }
  return queue_promise_job(env, "amibundle.inflatePiece", inflate_piece_execute, inflate_piece_complete, job,
                           &job->work, &job->deferred);
}

int register_libdeflate(napi_env env, napi_value exports) {
  if (!load_libdeflate() || deflate_walk_init() != 0) return 0;
  isal_available(); /* opened here, on the main thread, not first in a pool thread */
  napi_property_descriptor props[] = {
      {"deflatePiece", NULL, deflate_piece, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inflatePiece", NULL, inflate_piece, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, 2, props) != napi_ok) return -1;
  /* Which library inflates pieces, for bench and doctor output. */
  napi_value engine;
  if (napi_create_string_utf8(env, isal_available() ? "isa-l" : "libdeflate", NAPI_AUTO_LENGTH, &engine) != napi_ok)
    return -1;
  return napi_set_named_property(env, exports, "inflateEngine", engine) == napi_ok ? 0 : -1;
}
