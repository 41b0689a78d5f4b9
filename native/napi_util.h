/* Small Node-API helpers shared by the addon's source files. */
#ifndef AMIBUNDLE_NAPI_UTIL_H
#define AMIBUNDLE_NAPI_UTIL_H
#include <stdint.h>
#include <stdlib.h>

#include <node_api.h>

static inline napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

/* The bytes of a Uint8Array (or Buffer); 0 when v is anything else. */
static inline int get_bytes(napi_env env, napi_value v, const unsigned char **p, size_t *n) {
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  void *data;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, n, &data, &ab, &offset) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *p = data;
  return 1;
}

/* Finalizer of malloced_buffer: frees the memory and tells V8 it is gone. */
static inline void free_malloced(napi_env env, void *data, void *hint) {
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)(uintptr_t)hint, &ignored);
  free(data);
}

/* A Buffer over malloc'd memory, which it then owns. V8 is told of the size: otherwise it cannot
 * see these buffers, collects them late, and a pipeline's resident memory grows by tens of MiB. */
static inline napi_status malloced_buffer(napi_env env, void *data, size_t len, napi_value *result) {
  napi_status status = napi_create_external_buffer(env, len, data, free_malloced, (void *)(uintptr_t)len, result);
  if (status == napi_ok) {
    int64_t ignored;
    napi_adjust_external_memory(env, (int64_t)len, &ignored);
  }
  return status;
}

/* The pointer held by an external made by this addon (a context); NULL for anything else. */
static inline void *get_external(napi_env env, napi_value v) {
  napi_valuetype type;
  void *p = NULL;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external) return NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

static inline void reject_with(napi_env env, napi_deferred deferred, const char *text) {
  napi_value msg, error;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_reject_deferred(env, deferred, error);
}

/* Creates the promise, queues `job` on libuv's threadpool and returns the promise, which the job's
 * complete callback settles through *deferred. NULL if Node-API failed (an exception is then
 * pending; the job is left as it is, since a half-made work item may already refer to it). */
static inline napi_value queue_promise_job(napi_env env, const char *name, napi_async_execute_callback execute,
                                           napi_async_complete_callback complete, void *job,
                                           napi_async_work *work, napi_deferred *deferred) {
  napi_value promise, resource_name;
  if (napi_create_promise(env, deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, execute, complete, job, work) != napi_ok ||
      napi_queue_async_work(env, *work) != napi_ok)
    return NULL;
  return promise;
}

#endif
