/* blob_bench.c - blob store throughput beside a reference, in one run against the same target.
 *
 *   blob_bench s3 URL COUNT SIZE    fv_blob (s3, 8 requests in flight on one loop) vs plain
 *                                   blocking libcurl easy calls with the same SigV4 signing
 *   blob_bench fs DIR COUNT SIZE    fv_blob (fs, 8 in flight) vs blocking write+fsync+rename
 *
 * Prints puts/s and gets/s for both and the ratio ours/reference. Built and run by
 * bench/blob.sh; not a test: nothing is asserted. */
#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "store/blob.h"

#define IN_FLIGHT 8

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct run {
    uv_loop_t *loop;
    fv_blob_t *bs;
    const char *data;
    size_t size;
    int count, started, done, errors, getting;
} run_t;

static void start_next(run_t *r);

static void on_put(int rc, const fv_blob_meta_t *meta, void *data)
{
    run_t *r = data;
    r->done++;
    r->errors += rc < 0;
    start_next(r);
}

static void on_get(int rc, const fv_blob_meta_t *meta, fv_slice_t body, void *data)
{
    run_t *r = data;
    r->done++;
    r->errors += rc < 0 || body.len != r->size;
    start_next(r);
}

static void start_next(run_t *r)
{
    if (r->started >= r->count)
        return;
    char key[64];
    snprintf(key, sizeof(key), "bench/obj-%06d", r->started++);
    int rc = r->getting ? fv_blob_get(r->bs, key, 0, 0, on_get, r, NULL)
                        : fv_blob_put(r->bs, key, r->data, r->size, NULL, on_put, r, NULL);
    if (rc < 0) {
        r->done++;
        r->errors++;
    }
}

static double run_ours(run_t *r, int getting)
{
    r->getting = getting;
    r->started = r->done = 0;
    double t0 = now_s();
    for (int i = 0; i < IN_FLIGHT; i++)
        start_next(r);
    while (r->done < r->count)
        uv_run(r->loop, UV_RUN_ONCE);
    return (double)r->count / (now_s() - t0);
}

static void on_closed(void *data)
{
    *(int *)data = 1;
}

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    *(size_t *)u += s * n;
    return s * n;
}

typedef struct src {
    const char *p;
    size_t left;
} src_t;

static size_t source(char *buf, size_t s, size_t n, void *u)
{
    src_t *src = u;
    size_t len = s * n < src->left ? s * n : src->left;
    memcpy(buf, src->p, len);
    src->p += len;
    src->left -= len;
    return len;
}

/* Reference for s3: the same requests, one at a time, blocking, one reused connection. */
static void ref_s3(const char *endpoint, const char *bucket, const char *data, size_t size,
                   int count, double *put_rate, double *get_rate)
{
    CURL *c = curl_easy_init();
    char url[512], hdr[128];
    struct curl_slist *h = NULL;
    double t0 = now_s();
    for (int pass = 0; pass < 2; pass++) {
        t0 = now_s();
        for (int i = 0; i < count; i++) {
            curl_easy_reset(c);
            snprintf(url, sizeof(url), "%s/%s/ref/obj-%06d", endpoint, bucket, i);
            curl_easy_setopt(c, CURLOPT_URL, url);
            curl_easy_setopt(c, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
            curl_easy_setopt(c, CURLOPT_USERPWD, "S3RVER:S3RVER");
            size_t got = 0;
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
            curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
            src_t s = {data, size};
            h = NULL;
            if (pass == 0) {
                snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: UNSIGNED-PAYLOAD");
                h = curl_slist_append(h, hdr);
                h = curl_slist_append(h, "Expect:");
                curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
                curl_easy_setopt(c, CURLOPT_READFUNCTION, source);
                curl_easy_setopt(c, CURLOPT_READDATA, &s);
            } else {
                h = curl_slist_append(h, "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92"
                                         "427ae41e4649b934ca495991b7852b855");
            }
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
            curl_easy_perform(c);
            curl_slist_free_all(h);
        }
        double rate = (double)count / (now_s() - t0);
        if (pass == 0)
            *put_rate = rate;
        else
            *get_rate = rate;
    }
    curl_easy_cleanup(c);
}

/* Reference for fs: what a put must do at least (write, fsync, rename), then a plain read. */
static void ref_fs(const char *dir, const char *data, size_t size, int count, double *put_rate,
                   double *get_rate)
{
    char tmp[600], dst[600];
    char *buf = malloc(size);
    snprintf(tmp, sizeof(tmp), "%s/ref", dir);
    mkdir(tmp, 0755);
    double t0 = now_s();
    for (int i = 0; i < count; i++) {
        snprintf(tmp, sizeof(tmp), "%s/ref/tmp", dir);
        snprintf(dst, sizeof(dst), "%s/ref/obj-%06d", dir, i);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (write(fd, data, size) < 0 || fsync(fd) < 0)
            perror("ref write");
        close(fd);
        rename(tmp, dst);
    }
    *put_rate = (double)count / (now_s() - t0);
    t0 = now_s();
    for (int i = 0; i < count; i++) {
        snprintf(dst, sizeof(dst), "%s/ref/obj-%06d", dir, i);
        int fd = open(dst, O_RDONLY);
        if (read(fd, buf, size) < 0)
            perror("ref read");
        close(fd);
    }
    *get_rate = (double)count / (now_s() - t0);
    free(buf);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: blob_bench s3 URL|fs DIR COUNT SIZE\n");
        return 2;
    }
    int s3 = strcmp(argv[1], "s3") == 0;
    int count = atoi(argv[3]);
    size_t size = (size_t)atol(argv[4]);
    char *data = malloc(size);
    for (size_t i = 0; i < size; i++)
        data[i] = (char)(i * 31);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    uv_loop_t loop;
    uv_loop_init(&loop);
    char url[600];
    if (s3)
        snprintf(url, sizeof(url), "%s", argv[2]);
    else
        snprintf(url, sizeof(url), "file:%s/ours", argv[2]);
    fv_blob_opts_t o = {.access_key = "S3RVER", .secret_key = "S3RVER"};
    fv_blob_t *bs;
    fv_error_t err = {0};
    if (fv_blob_open(&loop, url, &o, &bs, &err) < 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    run_t r = {&loop, bs, data, size, count, 0, 0, 0, 0};
    double ours_put = run_ours(&r, 0);
    double ours_get = run_ours(&r, 1);
    int closed = 0;
    fv_blob_close(bs, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_loop_close(&loop);

    double ref_put = 0, ref_get = 0;
    if (s3) {
        /* s3://BUCKET?endpoint=E&... */
        char bucket[128] = "", endpoint[256] = "";
        sscanf(argv[2], "s3://%127[^?]", bucket);
        const char *e = strstr(argv[2], "endpoint=");
        if (e)
            sscanf(e + 9, "%255[^&]", endpoint);
        ref_s3(endpoint, bucket, data, size, count, &ref_put, &ref_get);
    } else {
        ref_fs(argv[2], data, size, count, &ref_put, &ref_get);
    }
    const char *ref = s3 ? "blocking libcurl" : "write+fsync+rename";
    printf("blob %s: %d objects of %zu bytes, errors=%d\n", argv[1], count, size, r.errors);
    printf("  put: fv_blob %8.0f/s   %s %8.0f/s   ratio %.2f\n", ours_put, ref, ref_put,
           ours_put / ref_put);
    printf("  get: fv_blob %8.0f/s   %s %8.0f/s   ratio %.2f\n", ours_get, ref, ref_get,
           ours_get / ref_get);
    curl_global_cleanup();
    free(data);
    return r.errors ? 1 : 0;
}
