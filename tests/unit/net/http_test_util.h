/* http_test_util.h - helpers for the HTTP loop tests: a blocking client on a thread that talks
 * to a server running on the test's loop, with receive timeouts so nothing hangs. */
#ifndef FV_TESTS_NET_HTTP_TEST_UTIL_H
#define FV_TESTS_NET_HTTP_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <stdbool.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static inline int tc_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int tc_send(int fd, const char *s, size_t len)
{
    while (len) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

static inline int tc_send_str(int fd, const char *s)
{
    return tc_send(fd, s, strlen(s));
}

/* Counts complete responses (head plus Content-Length body) at the start of buf. */
static inline int tc_count_responses(const char *buf, size_t len)
{
    int count = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *end = memmem(buf + pos, len - pos, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t head_len = (size_t)(end - (buf + pos)) + 4;
        size_t body = 0;
        const char *cl = memmem(buf + pos, head_len, "Content-Length: ", 16);
        if (cl)
            body = strtoul(cl + 16, NULL, 10);
        bool is_head = memmem(buf + pos, head_len, "X-Head: 1", 9) != NULL;
        if (is_head)
            body = 0;
        if (pos + head_len + body > len)
            break;
        pos += head_len + body;
        count++;
    }
    return count;
}

/* Reads until count responses are complete, EOF, or the receive timeout. Returns bytes read;
 * buf is NUL-terminated. */
static inline size_t tc_read_responses(int fd, char *buf, size_t cap, int count)
{
    size_t len = 0;
    while (len + 1 < cap) {
        if (count > 0 && tc_count_responses(buf, len) >= count)
            break;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    buf[len] = '\0';
    return len;
}

/* Reads until the peer closes (or timeout); 1 when EOF was seen. */
static inline int tc_read_to_eof(int fd, char *buf, size_t cap, size_t *out_len)
{
    size_t len = 0;
    int eof = 0;
    while (len + 1 < cap) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n == 0) {
            eof = 1;
            break;
        }
        if (n < 0) {
            if (errno == ECONNRESET)
                eof = 1;
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out_len = len;
    return eof;
}

#endif
