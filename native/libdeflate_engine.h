/* libdeflate-backed deflateChunk/inflateChunk (see libdeflate_engine.c). */
#ifndef AMIBUNDLE_LIBDEFLATE_ENGINE_H
#define AMIBUNDLE_LIBDEFLATE_ENGINE_H
#include <node_api.h>

/* Adds deflateChunk and inflateChunk to exports when libdeflate.so.0 loads; 0 unless Node-API failed. */
int register_libdeflate(napi_env env, napi_value exports);

#endif
