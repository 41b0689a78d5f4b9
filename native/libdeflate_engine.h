/* libdeflate-backed deflatePiece/inflatePiece (see libdeflate_engine.c). */
#ifndef AMIBUNDLE_LIBDEFLATE_ENGINE_H
#define AMIBUNDLE_LIBDEFLATE_ENGINE_H
#include <node_api.h>

/* Adds deflatePiece and inflatePiece to exports when libdeflate.so.0 loads; 0 unless Node-API failed. */
int register_libdeflate(napi_env env, napi_value exports);

#endif
