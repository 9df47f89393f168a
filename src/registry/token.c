/* token.c - the generated registry token on disk. Written with O_EXCL, so two processes
 * starting at once agree on one token (the loser reads the winner's); mode 0600, since the
 * token is write access to the stack's routing. */
#include "registry/token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "registry/acl.h"

#define TOKEN_RANDOM_BYTES 32

static int token_path(const char *data_dir, char *out, size_t cap, const char *leaf)
{
    if (!data_dir || !*data_dir)
        return FV_EINVAL;
    if ((size_t)snprintf(out, cap, "%s/registry%s%s", data_dir, leaf ? "/" : "",
                         leaf ? leaf : "") >= cap)
        return FV_ETOOBIG;
    return 0;
}

int registry_token_read(const char *data_dir, char *out, size_t cap)
{
    char path[4200];
    int rc = token_path(data_dir, path, sizeof(path), "token");
    if (rc < 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? FV_ENOENT : -errno;
    char buf[REGISTRY_TOKEN_MAX + 2];
    ssize_t n;
    do {
        n = read(fd, buf, sizeof(buf) - 1);
    } while (n < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    if (n < REGISTRY_TOKEN_MIN || n > REGISTRY_TOKEN_MAX || (size_t)n >= cap ||
        strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/") !=
            (size_t)n)
        return FV_EINVAL;
    memcpy(out, buf, (size_t)n + 1);
    return 0;
}

int registry_token_ensure(const char *data_dir, char *out, size_t cap, fv_error_t *err)
{
    char dir[4200], path[4200];
    int rc;
    if (cap <= 2 * TOKEN_RANDOM_BYTES)
        return fv_error_set(err, FV_EINVAL, "registry token buffer too small");
    if ((rc = token_path(data_dir, dir, sizeof(dir), NULL)) < 0 ||
        (rc = token_path(data_dir, path, sizeof(path), "token")) < 0)
        return fv_error_set(err, rc, "general.data_dir is empty or too long");
    rc = registry_token_read(data_dir, out, cap);
    if (rc == 0)
        return 0;
    if (rc != FV_ENOENT)
        return fv_error_set(err, rc, "%s: not a usable token (%s); remove it to have a new "
                            "one made, or set registry.token", path, fv_strerror(rc));
    if ((mkdir(data_dir, 0755) < 0 && errno != EEXIST) ||
        (mkdir(dir, 0755) < 0 && errno != EEXIST))
        return fv_error_set(err, -errno, "%s: %s", dir, strerror(errno));
    unsigned char raw[TOKEN_RANDOM_BYTES];
    if ((rc = uv_random(NULL, NULL, raw, sizeof(raw), 0, NULL)) < 0)
        return fv_error_set(err, rc, "no randomness for the registry token: %s", uv_strerror(rc));
    char hex[2 * TOKEN_RANDOM_BYTES + 2];
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    hex[2 * TOKEN_RANDOM_BYTES] = '\n';
    hex[2 * TOKEN_RANDOM_BYTES + 1] = '\0';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST && registry_token_read(data_dir, out, cap) == 0)
            return 0;   /* another process made it first */
        return fv_error_set(err, -errno, "%s: %s", path, strerror(errno));
    }
    size_t len = 2 * TOKEN_RANDOM_BYTES + 1;
    ssize_t n = write(fd, hex, len);
    int e = errno;
    if (n == (ssize_t)len && fsync(fd) < 0) {
        e = errno;
        n = -1;
    }
    if (close(fd) < 0 && n == (ssize_t)len) {
        e = errno;
        n = -1;
    }
    if (n != (ssize_t)len) {
        unlink(path);
        return fv_error_set(err, n < 0 ? -e : FV_EIO, "%s: writing the token failed", path);
    }
    hex[2 * TOKEN_RANDOM_BYTES] = '\0';
    memcpy(out, hex, 2 * TOKEN_RANDOM_BYTES + 1);
    return 0;
}
