/* SHA-1 updates on libuv's threadpool (see async_sha1.c). */
#ifndef AMIBUNDLE_ASYNC_SHA1_H
#define AMIBUNDLE_ASYNC_SHA1_H
#include <node_api.h>

/* Adds sha1Create/sha1Update/sha1Digest when the running node exports OpenSSL's EVP API. */
int register_async_sha1(napi_env env, napi_value exports);

#endif
