/* fuzz_blob_key.c - blob keys and file-backend presigned URLs from arbitrary bytes.
 * The first byte picks the case: a raw key for fv_blob_key_check (and, when it passes, a
 * presign/verify round trip that must give the key back), a raw URL for
 * fv_blob_presign_verify, or a valid URL with the rest of the input spliced into it (so the
 * signature and expiry checks are reached, not just the prefix test). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "store/blob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static fv_blob_t *store;

static char dir[] = "/tmp/fv-fuzz-blob-XXXXXX";

/* nothing is stored: the directory is empty when the fuzzer exits (with the backend's
 * own bookkeeping directories inside, which go too) */
static void cleanup(void)
{
    static const char *const subs[] = {".fv-tmp", ".fv-meta"};
    for (size_t i = 0; i < 2; i++) {
        char sub[64];
        snprintf(sub, sizeof(sub), "%s/%s", dir, subs[i]);
        rmdir(sub);
    }
    rmdir(dir);
}

static int setup(void)
{
    if (!mkdtemp(dir))
        return -1;
    atexit(cleanup);
    char url[64];
    snprintf(url, sizeof(url), "file:%s", dir);
    fv_blob_opts_t o = {.presign_secret = "fuzz-secret"};
    fv_error_t err;
    uv_loop_init(&loop);
    return fv_blob_open(&loop, url, &o, &store, &err);
}

static void verify(const char *url, int64_t now)
{
    fv_error_t err;
    char *key = NULL;
    int rc = fv_blob_presign_verify(store, url, now, &key, &err);
    if (rc == 0) {
        if (!key || fv_blob_key_check(fv_slice_cstr(key), &err) != 0)
            __builtin_trap();
        fv_free(key);
    } else if (key) {
        __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store && setup() < 0)
        abort();
    if (size == 0)
        return 0;
    uint8_t mode = data[0] % 3;
    data++;
    size--;
    fv_error_t err;
    char *text = fv_malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    if (mode == 0) {
        if (fv_blob_key_check(fv_slice((const char *)data, size), &err) == 0) {
            char *url = NULL;
            /* the file backend may refuse more (e.g. its own path rules): then nothing to sign */
            if (fv_blob_presign_get(store, text, 60, &url, &err) != 0) {
                fv_free(text);
                return 0;
            }
            char *back = NULL;
            if (fv_blob_presign_verify(store, url, (int64_t)time(NULL), &back, &err) != 0 ||
                strcmp(back, text) != 0)
                __builtin_trap();
            fv_free(back);
            /* long after its expiry it must be refused */
            if (fv_blob_presign_verify(store, url, (int64_t)time(NULL) + 100000, &back,
                                       &err) != FV_EFORBIDDEN)
                __builtin_trap();
            fv_free(url);
        }
    } else if (mode == 1) {
        verify(text, (int64_t)time(NULL));
    } else {
        char *url = NULL;
        if (fv_blob_presign_get(store, "assets/mesh one.bin", 60, &url, &err) != 0)
            __builtin_trap();
        size_t ul = strlen(url);
        size_t at = size ? (size_t)data[0] % (ul + 1) : 0;
        char *mixed = fv_malloc(ul + size + 1);
        memcpy(mixed, url, at);
        memcpy(mixed + at, text + (size ? 1 : 0), size ? size - 1 : 0);
        size_t n = at + (size ? size - 1 : 0);
        memcpy(mixed + n, url + at, ul - at);
        mixed[n + ul - at] = '\0';
        verify(mixed, (int64_t)time(NULL));
        verify(mixed, 0);
        fv_free(mixed);
        fv_free(url);
    }
    fv_free(text);
    return 0;
}
