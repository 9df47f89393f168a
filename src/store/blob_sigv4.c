/* blob_sigv4.c - AWS Signature Version 4 query-string presigning for a GET (the URL a browser or
 * the asset service hands out). Request signing for our own calls is libcurl's
 * CURLOPT_AWS_SIGV4; this file only exists because a presigned URL is made without a request.
 * SHA-256 and HMAC-SHA256 come from libsodium. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "store/blob_internal.h"

static void hmac(unsigned char out[32], const void *key, size_t key_len, const char *msg)
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, strlen(msg));
    crypto_auth_hmacsha256_final(&st, out);
}

int fv__s3_presign(fv_buf_t *out, const char *scheme, const char *host, const char *path,
                   const char *access_key, const char *secret_key, const char *region,
                   time_t t, uint32_t expires_s)
{
    struct tm tm;
    char date[17], day[9];
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y%m%dT%H%M%SZ", &tm);
    memcpy(day, date, 8);
    day[8] = '\0';

    fv_buf_t scope, query, canon, sts;
    fv_buf_init(&scope, 0);
    fv_buf_init(&query, 0);
    fv_buf_init(&canon, 0);
    fv_buf_init(&sts, 0);
    int rc = fv_buf_printf(&scope, "%s/%s/s3/aws4_request", day, region);
    /* Parameters in byte order of their names: that is the canonical query string. */
    if (rc == 0)
        rc = fv_buf_append_str(&query, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
    if (rc == 0)
        rc = fv__blob_uri_encode(&query, access_key, strlen(access_key), 0);
    if (rc == 0)
        rc = fv_buf_append_str(&query, "%2F");
    if (rc == 0)
        rc = fv__blob_uri_encode(&query, scope.ptr, scope.len, 0);
    if (rc == 0)
        rc = fv_buf_printf(&query, "&X-Amz-Date=%s&X-Amz-Expires=%u&X-Amz-SignedHeaders=host",
                           date, expires_s);
    if (rc == 0)
        rc = fv_buf_printf(&canon, "GET\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD", path,
                           query.ptr, host);
    unsigned char digest[32];
    char hex[65];
    if (rc == 0) {
        crypto_hash_sha256(digest, (const unsigned char *)canon.ptr, canon.len);
        fv__blob_hex(digest, 32, hex);
        rc = fv_buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", date, scope.ptr, hex);
    }
    if (rc == 0) {
        size_t slen = strlen(secret_key);
        char *k0 = fv_malloc(slen + 5);
        memcpy(k0, "AWS4", 4);
        memcpy(k0 + 4, secret_key, slen + 1);
        unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
        hmac(k1, k0, slen + 4, day);
        sodium_memzero(k0, slen + 4);
        fv_free(k0);
        hmac(k2, k1, 32, region);
        hmac(k3, k2, 32, "s3");
        hmac(k4, k3, 32, "aws4_request");
        hmac(sig, k4, 32, sts.ptr);
        fv__blob_hex(sig, 32, hex);
        sodium_memzero(k4, sizeof(k4));
        rc = fv_buf_printf(out, "%s://%s%s?%s&X-Amz-Signature=%s", scheme, host, path,
                           query.ptr, hex);
    }
    fv_buf_dispose(&scope);
    fv_buf_dispose(&query);
    fv_buf_dispose(&canon);
    fv_buf_dispose(&sts);
    return rc;
}
