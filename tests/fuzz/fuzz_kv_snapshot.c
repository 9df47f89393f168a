/* fuzz_kv_snapshot.c - arbitrary bytes as the memory kv store's snapshot file: each input is
 * written to a temp file and opened as memory:?snapshot=FILE, the same synchronous load a
 * restart does, then the store is closed again. A file the loader accepts must also survive
 * one write and reload (the close writes it when the store changed). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "store/kv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static char path[64];
static char url[96];

static char dir[] = "/tmp/fv-fuzz-kv-XXXXXX";

/* the snapshot file and its temp directory go when the fuzzer exits */
static void cleanup(void)
{
    char tmp[96];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    unlink(path);
    rmdir(dir);
}

static void on_closed(void *data)
{
    *(int *)data = 1;
}

static void on_set(fv_kv_t *kv, int status, const fv_kv_reply_t *reply, void *data)
{
    *(int *)data = status == 0 ? 1 : -1;
}

static void close_and_wait(fv_kv_t *kv)
{
    int closed = 0;
    fv_kv_close(kv, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        if (!mkdtemp(dir))
            abort();
        atexit(cleanup);
        snprintf(path, sizeof(path), "%s/snap", dir);
        snprintf(url, sizeof(url), "memory:?snapshot=%s", path);
        uv_loop_init(&loop);
        fv_log_set_level(FV_LOG_ERROR);
    }
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
    fv_kv_t *kv = NULL;
    fv_error_t err;
    if (fv_kv_open(&loop, url, NULL, &kv, &err) != 0)
        return 0;
    /* accepted: change it so the close writes a snapshot, which must load again */
    int done = 0;
    if (fv_kv_set(kv, fv_slice_cstr("fuzz:marker"), fv_slice_cstr("1"), 0, 0, on_set,
                  &done) != 0)
        __builtin_trap();
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
    close_and_wait(kv);
    if (fv_kv_open(&loop, url, NULL, &kv, &err) != 0)
        __builtin_trap();
    close_and_wait(kv);
    return 0;
}
