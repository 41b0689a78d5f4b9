/* amibundle's native hot path (Node-API 8, plain C): data extents of a sparse file via
 * lseek(SEEK_DATA/SEEK_HOLE), and a word-wide all-zero test per block of a buffer.
 * src/io/ wraps both and keeps a TypeScript fallback with the same results. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <node_api.h>

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

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
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

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
      {"dataExtents", NULL, data_extents, NULL, NULL, NULL, napi_enumerable, NULL},
      {"zeroBlocks", NULL, zero_blocks, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
