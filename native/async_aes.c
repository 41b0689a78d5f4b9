/* AES-128-CBC decryption of a bundle's parts, in place and on libuv's threadpool. Node's
 * decipher.update() returns every output in a freshly allocated buffer: on the virtual machines
 * measured that first touch of new memory, and the garbage it leaves, held decryption near 0.75 GB/s
 * on the event loop, where OpenSSL's own code (VAES) decrypts 10 GB/s. Here the cipher is OpenSSL's,
 * taken from the node binary (dlsym, as async_sha1.c does), padding is left to the caller (which
 * checks and strips the PKCS#7 padding of the last block), and the caller's buffer is overwritten
 * with the plaintext. Callers keep at most one update of a context in flight, which keeps the
 * order of the chain. */
#include "async_aes.h"

#include <dlfcn.h>
#include <stdlib.h>

#include "context_job.h"
#include "napi_util.h"

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct evp_cipher_st EVP_CIPHER;

static struct {
  EVP_CIPHER_CTX *(*ctx_new)(void);
  void (*ctx_free)(EVP_CIPHER_CTX *);
  const EVP_CIPHER *(*aes_128_cbc)(void);
  int (*init)(EVP_CIPHER_CTX *, const EVP_CIPHER *, void *, const unsigned char *, const unsigned char *);
  int (*set_padding)(EVP_CIPHER_CTX *, int);
  int (*update)(EVP_CIPHER_CTX *, unsigned char *, int *, const unsigned char *, int);
} evp;

static int load_evp(void) {
  void *self = dlopen(NULL, RTLD_NOW);
  if (!self) return 0;
  *(void **)&evp.ctx_new = dlsym(self, "EVP_CIPHER_CTX_new");
  *(void **)&evp.ctx_free = dlsym(self, "EVP_CIPHER_CTX_free");
  *(void **)&evp.aes_128_cbc = dlsym(self, "EVP_aes_128_cbc");
  *(void **)&evp.init = dlsym(self, "EVP_DecryptInit_ex");
  *(void **)&evp.set_padding = dlsym(self, "EVP_CIPHER_CTX_set_padding");
  *(void **)&evp.update = dlsym(self, "EVP_DecryptUpdate");
  return evp.ctx_new && evp.ctx_free && evp.aes_128_cbc && evp.init && evp.set_padding && evp.update;
}

static void free_ctx(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  evp.ctx_free(data);
}

/* aesCbcDecryptCreate(key: 16 bytes, iv: 16 bytes): an opaque context, padding off. */
static napi_value aes_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  const unsigned char *key, *iv;
  size_t key_len, iv_len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !get_bytes(env, argv[0], &key, &key_len) || !get_bytes(env, argv[1], &iv, &iv_len) || key_len != 16 ||
      iv_len != 16)
    return throw_type(env, "aesCbcDecryptCreate(key: 16 bytes, iv: 16 bytes)");
  EVP_CIPHER_CTX *ctx = evp.ctx_new();
  if (!ctx || evp.init(ctx, evp.aes_128_cbc(), NULL, key, iv) != 1 || evp.set_padding(ctx, 0) != 1) {
    if (ctx) evp.ctx_free(ctx);
    napi_throw_error(env, NULL, "cannot create an AES-128-CBC context");
    return NULL;
  }
  napi_value result;
  if (napi_create_external(env, ctx, free_ctx, NULL, &result) != napi_ok) {
    evp.ctx_free(ctx);
    return NULL;
  }
  return result;
}

/* EVP takes an int length: a large buffer goes through in slices well under INT_MAX. */
#define SLICE ((size_t)1 << 30)

static void update_execute(napi_env env, void *data) {
  (void)env;
  context_job *job = data;
  job->ok = 1;
  for (size_t at = 0; at < job->len && job->ok;) {
    size_t n = job->len - at < SLICE ? job->len - at : SLICE;
    int out = 0;
    /* In place (out == in) is allowed by EVP; with padding off the output is exactly n bytes. */
    job->ok = evp.update(job->ctx, job->data + at, &out, job->data + at, (int)n) == 1 && (size_t)out == n;
    at += n;
  }
}

/* aesCbcDecryptUpdate(ctx, data: Uint8Array, a multiple of 16 bytes): Promise<void>; data is
 * overwritten with its plaintext. One at a time per context. */
static napi_value aes_update(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2)
    return throw_type(env, "aesCbcDecryptUpdate(ctx, data)");
  return queue_context_job(env, argv[0], argv[1], 16,
                           "aesCbcDecryptUpdate(ctx from aesCbcDecryptCreate, data: a multiple of 16 bytes)",
                           "amibundle.aesCbcDecryptUpdate", "AES-128-CBC decryption failed", update_execute);
}

int register_async_aes(napi_env env, napi_value exports) {
  if (!load_evp()) return 0;
  napi_property_descriptor props[] = {
      {"aesCbcDecryptCreate", NULL, aes_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aesCbcDecryptUpdate", NULL, aes_update, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, 2, props) == napi_ok ? 0 : -1;
}
