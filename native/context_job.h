/* One threadpool job over a context (an OpenSSL hash or cipher held in an external) and a byte
 * array, shared by async_sha1.c and async_aes.c: both keep the context and the bytes referenced
 * while the job runs, settle a promise with undefined or an error, and allow one job per context
 * at a time (their callers chain them, which keeps the order). */
#ifndef AMIBUNDLE_CONTEXT_JOB_H
#define AMIBUNDLE_CONTEXT_JOB_H
#include <stdlib.h>

#include "napi_util.h"

typedef struct context_job {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref ctx_ref;
  napi_ref data_ref;
  void *ctx;
  unsigned char *data;
  size_t len;
  int ok;
  const char *failure;
} context_job;

static inline void context_job_complete(napi_env env, napi_status status, void *data) {
  context_job *job = data;
  if (status == napi_ok && job->ok) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
  } else {
    reject_with(env, job->deferred, job->failure);
  }
  napi_delete_reference(env, job->ctx_ref);
  napi_delete_reference(env, job->data_ref);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* Queues execute(job) for the context in ctx_value (made by this addon) and the Uint8Array in
 * data_value, whose length must be a multiple of `multiple`; returns the promise, or NULL with a
 * TypeError thrown (`usage` says what was expected). */
static inline napi_value queue_context_job(napi_env env, napi_value ctx_value, napi_value data_value,
                                           size_t multiple, const char *usage, const char *name,
                                           const char *failure, napi_async_execute_callback execute) {
  void *ctx = get_external(env, ctx_value);
  const unsigned char *bytes;
  size_t len;
  if (!ctx || !get_bytes(env, data_value, &bytes, &len) || len % multiple != 0) return throw_type(env, usage);
  context_job *job = calloc(1, sizeof *job);
  if (!job) return throw_type(env, "out of memory");
  job->ctx = ctx;
  job->data = (unsigned char *)bytes;
  job->len = len;
  job->failure = failure;
  if (napi_create_reference(env, ctx_value, 1, &job->ctx_ref) != napi_ok ||
      napi_create_reference(env, data_value, 1, &job->data_ref) != napi_ok) {
    free(job);
    return NULL;
  }
  return queue_promise_job(env, name, execute, context_job_complete, job, &job->work, &job->deferred);
}

#endif
