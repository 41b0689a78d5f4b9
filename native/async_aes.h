/* AES-128-CBC decryption in place on libuv's threadpool (see async_aes.c). */
#ifndef AMIBUNDLE_ASYNC_AES_H
#define AMIBUNDLE_ASYNC_AES_H
#include <node_api.h>

/* Adds aesCbcDecryptCreate/aesCbcDecryptUpdate when the running node exports OpenSSL's EVP API. */
int register_async_aes(napi_env env, napi_value exports);

#endif
