# Build description for the amibundle N-API addon (plain C, Node-API version 8).
# -O3 so the zero-block OR-reduction loop is auto-vectorised.
{
  "targets": [
    {
      "target_name": "amibundle_native",
      "sources": ["amibundle_native.c", "libdeflate_engine.c", "deflate_walk.c", "isal.c", "isal_stream.c", "async_sha1.c", "async_aes.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE", "_FILE_OFFSET_BITS=64"],
      "cflags": ["-O3", "-std=gnu11", "-Wall", "-Wextra"],
      "cflags!": ["-O2", "-O1", "-O0"],
      "libraries": ["-ldl"],
      "xcode_settings": {
        "GCC_OPTIMIZATION_LEVEL": "3",
        "OTHER_CFLAGS": ["-std=gnu11"]
      }
    }
  ]
}
