/* amibundle's native hot path (Node-API 8, plain C): data extents of a sparse file via
 * lseek(SEEK_DATA/SEEK_HOLE), a word-wide all-zero test per block of a buffer, and one piece of the
 * gzip body deflated with the system zlib on libuv's threadpool. src/io/ and src/codec/ wrap them and
 * keep TypeScript fallbacks (same results for the first two; Node's zlib for the third). */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <node_api.h>

#include "async_aes.h"
#include "async_sha1.h"
#include "isal.h"
#include "libdeflate_engine.h"
#include "napi_util.h"

/* 2^53: above this a double no longer holds every integer, so offsets would be wrong. */
#define MAX_SAFE_OFFSET 9007199254740992.0

static const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name != NULL) return name;
#endif
  switch (err) {
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case ENXIO: return "ENXIO";
    case ESPIPE: return "ESPIPE";
    case EOVERFLOW: return "EOVERFLOW";
    case EIO: return "EIO";
    default: return "EUNKNOWN";
  }
}

/* Throws an Error whose .code is the errno name (EINVAL, ...) so the TS side can decide to fall back. */
static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s (%s)", what, strerror(err), errno_name(err));
  napi_throw_error(env, errno_name(err), msg);
  return NULL;
}


#define NAPI_OK(call)                        \
  do {                                       \
    if ((call) != napi_ok) return NULL;      \
  } while (0)

typedef struct {
  double *v;
  size_t len;
  size_t cap;
} dvec;

static int dvec_push2(dvec *d, double a, double b) {
  if (d->len + 2 > d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 64;
    double *v = realloc(d->v, cap * sizeof *v);
    if (v == NULL) return -1;
    d->v = v;
    d->cap = cap;
  }
  d->v[d->len++] = a;
  d->v[d->len++] = b;
  return 0;
}

/* dataExtents(fd, size) -> [off0, len0, off1, len1, ...], sorted, merged, clipped to size.
 * The fd's file position is restored afterwards (lseek moves it). */
static napi_value data_extents(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "dataExtents(fd, size) needs two numbers");

  int32_t fd;
  double size_d;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0)
    return throw_type(env, "dataExtents: fd must be a non-negative integer");
  if (napi_get_value_double(env, argv[1], &size_d) != napi_ok || !(size_d >= 0) ||
      size_d > MAX_SAFE_OFFSET || size_d != (double)(int64_t)size_d)
    return throw_type(env, "dataExtents: size must be an integer in [0, 2^53]");
  const off_t size = (off_t)size_d;

  const off_t saved = lseek(fd, 0, SEEK_CUR);
  if (saved < 0) return throw_errno(env, "lseek(SEEK_CUR)", errno);

  dvec out = {NULL, 0, 0};
  int err = 0;
  const char *what = NULL;
  off_t pos = 0;
  while (pos < size) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno != ENXIO) {
        err = errno;
        what = "lseek(SEEK_DATA)";
      }
      break; /* ENXIO: no data at or after pos */
    }
    if (data >= size) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) {
      err = errno;
      what = "lseek(SEEK_HOLE)";
      break;
    }
    if (hole <= data) { /* the file changed under us; step on rather than loop forever */
      pos = data + 1;
      continue;
    }
    if (hole > size) hole = size;
    if (out.len >= 2 && out.v[out.len - 2] + out.v[out.len - 1] == (double)data) {
      out.v[out.len - 1] += (double)(hole - data);
    } else if (dvec_push2(&out, (double)data, (double)(hole - data)) != 0) {
      err = ENOMEM;
      what = "dataExtents";
      break;
    }
    pos = hole;
  }
  lseek(fd, saved, SEEK_SET);

  if (err != 0) {
    free(out.v);
    return throw_errno(env, what, err);
  }

  napi_value arr;
  if (napi_create_array_with_length(env, out.len, &arr) != napi_ok) {
    free(out.v);
    return NULL;
  }
  for (size_t i = 0; i < out.len; i++) {
    napi_value num;
    if (napi_create_double(env, out.v[i], &num) != napi_ok ||
        napi_set_element(env, arr, (uint32_t)i, num) != napi_ok) {
      free(out.v);
      return NULL;
    }
  }
  free(out.v);
  return arr;
}

/* 1 when all n bytes are zero. Works through 256-byte chunks whose inner OR-reduction over
 * 64-bit words (memcpy: any alignment) the compiler vectorises at -O3; leaves at the first
 * chunk holding data, so blocks of real data cost almost nothing. */
static int all_zero(const unsigned char *p, size_t n) {
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    uint64_t acc = 0;
    for (size_t k = 0; k < 256; k += 8) {
      uint64_t w;
      memcpy(&w, p + i + k, 8);
      acc |= w;
    }
    if (acc != 0) return 0;
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w != 0) return 0;
  }
  unsigned char tail = 0;
  for (; i < n; i++) tail |= p[i];
  return tail == 0;
}

/* zeroBlocks(buf, blockSize) -> Uint8Array with one byte per block (last may be short): 1 = all zero. */
static napi_value zero_blocks(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) return throw_type(env, "zeroBlocks(buf, blockSize) needs a Uint8Array and a number");

  bool is_ta = false;
  NAPI_OK(napi_is_typedarray(env, argv[0], &is_ta));
  if (!is_ta) return throw_type(env, "zeroBlocks: buf must be a Buffer or Uint8Array");
  napi_typedarray_type type;
  size_t length;
  void *data;
  NAPI_OK(napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL));
  if (type != napi_uint8_array && type != napi_uint8_clamped_array)
    return throw_type(env, "zeroBlocks: buf must be a Buffer or Uint8Array");

  double bs_d;
  if (napi_get_value_double(env, argv[1], &bs_d) != napi_ok || !(bs_d >= 1) || bs_d > 2147483647.0 ||
      bs_d != (double)(int64_t)bs_d)
    return throw_type(env, "zeroBlocks: blockSize must be a positive integer");
  const size_t bs = (size_t)bs_d;

  const size_t nblocks = length / bs + (length % bs != 0);
  napi_value ab, result;
  void *outp = NULL;
  NAPI_OK(napi_create_arraybuffer(env, nblocks, &outp, &ab));
  NAPI_OK(napi_create_typedarray(env, napi_uint8_array, nblocks, ab, 0, &result));

  const unsigned char *p = data;
  unsigned char *o = outp;
  for (size_t b = 0; b < nblocks; b++) {
    const size_t start = b * bs;
    const size_t n = length - start < bs ? length - start : bs;
    o[b] = (unsigned char)all_zero(p + start, n);
  }
  return result;
}


#if __has_include("/usr/include/zlib.h")
#define HAVE_SYSTEM_ZLIB 1
/* The system header by path: <zlib.h> would find Node's copy first on the include path. */
#include "/usr/include/zlib.h"

/* ---- deflatePieceZlib: one piece (pigz-style block) with the system zlib, on libuv's threadpool ----
 * Node bundles Chromium's zlib fork, whose faster hashing loses ~2% of compression at levels 6-9
 * against GNU gzip; the system zlib is the engine gzip and pigz sizes are measured with.
 * The node binary exports its own deflate symbols, so libz.so.1 is opened privately
 * (RTLD_DEEPBIND) and its functions are called through pointers, never by name. */

typedef int (*deflate_init2_fn)(z_streamp, int, int, int, int, int, const char *, int);
typedef int (*deflate_set_dict_fn)(z_streamp, const Bytef *, uInt);
typedef uLong (*deflate_bound_fn)(z_streamp, uLong);
typedef int (*deflate_fn)(z_streamp, int);
typedef int (*deflate_end_fn)(z_streamp);
typedef const char *(*zlib_version_fn)(void);

static struct {
  deflate_init2_fn init2;
  deflate_set_dict_fn set_dict;
  deflate_bound_fn bound;
  deflate_fn deflate;
  deflate_end_fn end;
  const char *version;
} sysz;

static int load_system_zlib(void) {
  void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!h) return 0;
  sysz.init2 = (deflate_init2_fn)dlsym(h, "deflateInit2_");
  sysz.set_dict = (deflate_set_dict_fn)dlsym(h, "deflateSetDictionary");
  sysz.bound = (deflate_bound_fn)dlsym(h, "deflateBound");
  sysz.deflate = (deflate_fn)dlsym(h, "deflate");
  sysz.end = (deflate_end_fn)dlsym(h, "deflateEnd");
  zlib_version_fn version = (zlib_version_fn)dlsym(h, "zlibVersion");
  if (!sysz.init2 || !sysz.set_dict || !sysz.bound || !sysz.deflate || !sysz.end || !version) return 0;
  sysz.version = version();
  return 1;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref;
  napi_ref dict_ref;
  const unsigned char *input;
  size_t input_len;
  const unsigned char *dict;
  size_t dict_len;
  int level;
  int last;
  unsigned char *out;
  size_t out_len;
  int zerr;
} deflate_job;

static void deflate_execute(napi_env env, void *data) {
  (void)env;
  deflate_job *job = data;
  z_stream z;
  memset(&z, 0, sizeof z);
  job->zerr = sysz.init2(&z, job->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, sysz.version, (int)sizeof(z_stream));
  if (job->zerr != Z_OK) return;
  if (job->dict_len > 0) {
    job->zerr = sysz.set_dict(&z, job->dict, (uInt)job->dict_len);
    if (job->zerr != Z_OK) { sysz.end(&z); return; }
  }
  /* deflateBound covers Z_FINISH; a sync flush adds at most 5 more bytes (empty stored block). */
  size_t cap = sysz.bound(&z, (uLong)job->input_len) + 16;
  job->out = malloc(cap);
  if (!job->out) { job->zerr = Z_MEM_ERROR; sysz.end(&z); return; }
  z.next_in = (Bytef *)job->input;
  z.avail_in = (uInt)job->input_len;
  z.next_out = job->out;
  z.avail_out = (uInt)cap;
  int rc = sysz.deflate(&z, job->last ? Z_FINISH : Z_SYNC_FLUSH);
  int ok = job->last ? rc == Z_STREAM_END : (rc == Z_OK && z.avail_in == 0 && z.avail_out > 0);
  job->out_len = cap - z.avail_out;
  job->zerr = ok ? Z_OK : (rc == Z_OK ? Z_BUF_ERROR : rc);
  sysz.end(&z);
}

static void deflate_complete(napi_env env, napi_status status, void *data) {
  deflate_job *job = data;
  napi_value result;
  if (status == napi_ok && job->zerr == Z_OK) {
    if (malloced_buffer(env, job->out, job->out_len, &result) == napi_ok) {
      job->out = NULL;
      napi_resolve_deferred(env, job->deferred, result);
    } else {
      reject_with(env, job->deferred, "cannot create the output buffer");
    }
  } else {
    char text[96];
    snprintf(text, sizeof text, "zlib deflate failed (%d)", job->zerr);
    reject_with(env, job->deferred, text);
  }
  free(job->out);
  napi_delete_reference(env, job->input_ref);
  if (job->dict_ref) napi_delete_reference(env, job->dict_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* deflatePieceZlib(input: Uint8Array, dictionary: Uint8Array | null, level: number, last: boolean): Promise<Buffer> */
static napi_value deflate_piece_zlib(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4)
    return throw_type(env, "deflatePieceZlib(input, dictionary, level, last)");
  deflate_job *job = calloc(1, sizeof *job);
  if (!job) return throw_type(env, "out of memory");
  if (!get_bytes(env, argv[0], &job->input, &job->input_len)) { free(job); return throw_type(env, "input must be a Uint8Array"); }
  napi_valuetype dt;
  napi_typeof(env, argv[1], &dt);
  if (dt != napi_null && dt != napi_undefined) {
    if (!get_bytes(env, argv[1], &job->dict, &job->dict_len)) { free(job); return throw_type(env, "dictionary must be a Uint8Array or null"); }
    napi_create_reference(env, argv[1], 1, &job->dict_ref);
  }
  int32_t level;
  bool last;
  if (napi_get_value_int32(env, argv[2], &level) != napi_ok || level < 0 || level > 9) {
    if (job->dict_ref) napi_delete_reference(env, job->dict_ref);
    free(job);
    return throw_type(env, "level must be 0..9");
  }
  napi_get_value_bool(env, argv[3], &last);
  job->level = level;
  job->last = last;
  napi_create_reference(env, argv[0], 1, &job->input_ref);
  return queue_promise_job(env, "amibundle.deflatePieceZlib", deflate_execute, deflate_complete, job, &job->work,
                           &job->deferred);
}
#endif /* HAVE_SYSTEM_ZLIB */

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
      {"dataExtents", NULL, data_extents, NULL, NULL, NULL, napi_enumerable, NULL},
      {"zeroBlocks", NULL, zero_blocks, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
#ifdef HAVE_SYSTEM_ZLIB
  /* Exported only when the system zlib loads; callers fall back to Node's zlib otherwise. */
  if (load_system_zlib()) {
    napi_property_descriptor deflate_prop = {"deflatePieceZlib", NULL, deflate_piece_zlib, NULL, NULL, NULL, napi_enumerable, NULL};
    if (napi_define_properties(env, exports, 1, &deflate_prop) != napi_ok) return NULL;
  }
#endif
  if (register_libdeflate(env, exports) != 0) return NULL;
  if (register_async_sha1(env, exports) != 0) return NULL;
  if (register_async_aes(env, exports) != 0) return NULL;
  if (register_isal_stream(env, exports) != 0) return NULL;
  return exports;
}
