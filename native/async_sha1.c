/* SHA-1 contexts whose updates run on libuv's threadpool, so a restore can hash its tar stream
 * (the manifest's digest) while the event loop parses and writes it. The hashing is OpenSSL's, taken
 * from the node binary itself, which exports it for addons (found with dlsym, so no OpenSSL headers
 * are needed and the same SHA-NI code runs as crypto.createHash). Callers keep at most one update
 * of a context in flight (they chain them), which keeps the order. */
#include "async_sha1.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "context_job.h"
#include "napi_util.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;

static struct {
  EVP_MD_CTX *(*ctx_new)(void);
  void (*ctx_free)(EVP_MD_CTX *);
  const EVP_MD *(*sha1)(void);
  int (*init)(EVP_MD_CTX *, const EVP_MD *, void *);
  int (*update)(EVP_MD_CTX *, const void *, size_t);
  int (*final)(EVP_MD_CTX *, unsigned char *, unsigned int *);
} evp;

static int load_evp(void) {
  void *self = dlopen(NULL, RTLD_NOW);
  if (!self) return 0;
  *(void **)&evp.ctx_new = dlsym(self, "EVP_MD_CTX_new");
  *(void **)&evp.ctx_free = dlsym(self, "EVP_MD_CTX_free");
  *(void **)&evp.sha1 = dlsym(self, "EVP_sha1");
  *(void **)&evp.init = dlsym(self, "EVP_DigestInit_ex");
  *(void **)&evp.update = dlsym(self, "EVP_DigestUpdate");
  *(void **)&evp.final = dlsym(self, "EVP_DigestFinal_ex");
  return evp.ctx_new && evp.ctx_free && evp.sha1 && evp.init && evp.update && evp.final;
}

static void free_ctx(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  evp.ctx_free(data);
}

/* sha1Create(): an opaque context. */
static napi_value sha1_create(napi_env env, napi_callback_info info) {
  (void)info;
  EVP_MD_CTX *ctx = evp.ctx_new();
  if (!ctx || evp.init(ctx, evp.sha1(), NULL) != 1) {
    if (ctx) evp.ctx_free(ctx);
    napi_throw_error(env, NULL, "cannot create a SHA-1 context");
    return NULL;
  }
  napi_value result;
  if (napi_create_external(env, ctx, free_ctx, NULL, &result) != napi_ok) {
    evp.ctx_free(ctx);
    return NULL;
  }
  return result;
}

static void update_execute(napi_env env, void *data) {
  (void)env;
  context_job *job = data;
  job->ok = evp.update(job->ctx, job->data, job->len) == 1;
}

/* sha1Update(ctx, data: Uint8Array): Promise<void>. One at a time per context. */
static napi_value sha1_update(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2)
    return throw_type(env, "sha1Update(ctx, data)");
  return queue_context_job(env, argv[0], argv[1], 1, "sha1Update(ctx from sha1Create, data: Uint8Array)",
                           "amibundle.sha1Update", "SHA-1 update failed", update_execute);
}

/* sha1Digest(ctx): the 40-character hex digest; the context is then spent. */
static napi_value sha1_digest(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1)
    return throw_type(env, "sha1Digest(ctx)");
  EVP_MD_CTX *ctx = get_external(env, argv[0]);
  if (!ctx) return throw_type(env, "ctx must come from sha1Create");
  unsigned char md[64];
  unsigned int n = 0;
  if (evp.final(ctx, md, &n) != 1 || n != 20) {
    napi_throw_error(env, NULL, "SHA-1 final failed");
    return NULL;
  }
  char hex[41];
  for (unsigned i = 0; i < 20; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  napi_value result;
  if (napi_create_string_utf8(env, hex, 40, &result) != napi_ok) return NULL;
  return result;
}

int register_async_sha1(napi_env env, napi_value exports) {
  if (!load_evp()) return 0;
  napi_property_descriptor props[] = {
      {"sha1Create", NULL, sha1_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha1Update", NULL, sha1_update, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha1Digest", NULL, sha1_digest, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, 3, props) == napi_ok ? 0 : -1;
}
