/* Streaming raw-deflate inflate with ISA-L's igzip (isal_inflate), on libuv's threadpool. The
 * parallel reader (inflatePiece) needs amibundle's block marks; a member without them (one
 * `gzip -9` stream: every bundle ec2-ami-tools wrote) is read from start to end by one decoder.
 * igzip does that about four times as fast as zlib, and on a pool thread it leaves the main
 * thread free for decryption, tar parsing and the writes: the work overlaps on two cores.
 * libisal.so.2 is opened at run time (isal.c); without it nothing here is exported. */
#include <stdlib.h>
#include <string.h>

#include "isal.h"
#include "napi_util.h"

#if __has_include(<isa-l/igzip_lib.h>)
#include <dlfcn.h>
#include <isa-l/igzip_lib.h>

static void (*init_fn)(struct inflate_state *);
static int (*set_dict_fn)(struct inflate_state *, uint8_t *, uint32_t);
static int (*inflate_fn)(struct inflate_state *);

static int load_stream_fns(void) {
  if (!isal_available()) return 0;
  void *h = dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (!h) return 0;
  *(void **)&init_fn = dlsym(h, "isal_inflate_init");
  *(void **)&set_dict_fn = dlsym(h, "isal_inflate_set_dict");
  *(void **)&inflate_fn = dlsym(h, "isal_inflate");
  return init_fn && set_dict_fn && inflate_fn;
}

typedef struct {
  struct inflate_state state;
  int busy; /* one run at a time: the JS side never queues a second, this refuses it if it did */
} stream_t;

static void stream_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  free(data);
}

/* inflateStreamCreate(dictionary: Uint8Array | null, crc: number): object
 * A raw-deflate decoder whose output CRC-32 (gzip's) starts from `crc`, primed with `dictionary`
 * (the output before it) when a reader hands over part-way through a member. */
static napi_value stream_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2)
    return throw_type(env, "inflateStreamCreate(dictionary, crc)");
  const unsigned char *dict = NULL;
  size_t dict_len = 0;
  napi_valuetype dt;
  napi_typeof(env, argv[0], &dt);
  if (dt != napi_null && dt != napi_undefined && !get_bytes(env, argv[0], &dict, &dict_len))
    return throw_type(env, "dictionary must be a Uint8Array or null");
  uint32_t crc;
  if (napi_get_value_uint32(env, argv[1], &crc) != napi_ok) return throw_type(env, "crc must be a number");
  if (dict_len > 32768) {
    dict += dict_len - 32768;
    dict_len = 32768;
  }
  stream_t *s = calloc(1, sizeof *s);
  if (!s) return throw_type(env, "out of memory");
  init_fn(&s->state);
  s->state.crc_flag = ISAL_GZIP_NO_HDR; /* raw deflate in, gzip's CRC-32 of the output kept */
  s->state.crc = crc;
  if (dict_len > 0 && set_dict_fn(&s->state, (uint8_t *)dict, (uint32_t)dict_len) != ISAL_DECOMP_OK) {
    free(s);
    return throw_type(env, "ISA-L refused the dictionary");
  }
  napi_value result;
  if (napi_create_external(env, s, stream_finalize, NULL, &result) != napi_ok) {
    free(s);
    return NULL;
  }
  return result;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref stream_ref, input_ref, output_ref;
  stream_t *s;
  const unsigned char *input;
  size_t input_len;
  unsigned char *output;
  size_t capacity;
  int rc;
  /* Results. `unused`: input bytes after the end of the deflate stream, counted back from the end
   * of this input (it may exceed input_len by a few bytes igzip had buffered from the input before). */
  size_t consumed, written, unused;
  int finished;
} run_job;

static void run_execute(napi_env env, void *data) {
  (void)env;
  run_job *job = data;
  struct inflate_state *st = &job->s->state;
  st->next_in = (uint8_t *)job->input;
  st->avail_in = (uint32_t)job->input_len;
  st->next_out = job->output;
  st->avail_out = (uint32_t)job->capacity;
  job->rc = inflate_fn(st);
  job->consumed = job->input_len - st->avail_in;
  job->written = job->capacity - st->avail_out;
  job->finished = st->block_state == ISAL_BLOCK_FINISH;
  /* Whole bytes still in igzip's bit buffer were read ahead, not used. */
  if (job->finished) job->unused = st->avail_in + (size_t)(st->read_in_length / 8);
}

static void set_number(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, name, n);
}

static void run_complete(napi_env env, napi_status status, void *data) {
  run_job *job = data;
  job->s->busy = 0;
  if (status != napi_ok) {
    reject_with(env, job->deferred, "inflateStreamRun was cancelled");
  } else {
    napi_value result, finished;
    napi_create_object(env, &result);
    /* rc < 0: corrupt data (igzip's codes: -1 invalid block, -2 symbol, -3 look-back distance). */
    set_number(env, result, "error", job->rc < 0 ? job->rc : 0);
    set_number(env, result, "consumed", (double)job->consumed);
    set_number(env, result, "written", (double)job->written);
    set_number(env, result, "unused", (double)job->unused);
    set_number(env, result, "crc", (double)job->s->state.crc);
    napi_get_boolean(env, job->finished, &finished);
    napi_set_named_property(env, result, "finished", finished);
    napi_resolve_deferred(env, job->deferred, result);
  }
  napi_delete_reference(env, job->stream_ref);
  napi_delete_reference(env, job->input_ref);
  napi_delete_reference(env, job->output_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* inflateStreamRun(stream, input: Uint8Array, output: Uint8Array): Promise<{ error, consumed,
 *   written, finished, unused, crc }>: one isal_inflate() call on the threadpool. It stops when the
 * input is used up, the output is full, or the stream ended; igzip keeps what it needs of the input
 * (bits, a partial header) in its state, so the caller gives each byte once. */
static napi_value stream_run(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3)
    return throw_type(env, "inflateStreamRun(stream, input, output)");
  stream_t *s;
  if (napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || !s)
    return throw_type(env, "stream must come from inflateStreamCreate");
  if (s->busy) return throw_type(env, "inflateStreamRun: this stream is already running");
  const unsigned char *input, *output;
  size_t input_len, capacity;
  if (!get_bytes(env, argv[1], &input, &input_len)) return throw_type(env, "input must be a Uint8Array");
  if (!get_bytes(env, argv[2], &output, &capacity)) return throw_type(env, "output must be a Uint8Array");
  if (input_len > UINT32_MAX || capacity > UINT32_MAX) return throw_type(env, "input or output over 4 GiB");
  run_job *job = calloc(1, sizeof *job);
  if (!job) return throw_type(env, "out of memory");
  job->s = s;
  job->input = input;
  job->input_len = input_len;
  job->output = (unsigned char *)output;
  job->capacity = capacity;
  if (napi_create_reference(env, argv[0], 1, &job->stream_ref) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &job->input_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &job->output_ref) != napi_ok) {
    free(job);
    return NULL;
  }
  s->busy = 1;
  return queue_promise_job(env, "amibundle.inflateStreamRun", run_execute, run_complete, job, &job->work,
                           &job->deferred);
}

int register_isal_stream(napi_env env, napi_value exports) {
  if (!load_stream_fns()) return 0;
  napi_property_descriptor props[] = {
      {"inflateStreamCreate", NULL, stream_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inflateStreamRun", NULL, stream_run, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, 2, props) == napi_ok ? 0 : -1;
}

#else
int register_isal_stream(napi_env env, napi_value exports) {
  (void)env, (void)exports;
  return 0;
}
#endif
