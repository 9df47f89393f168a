/* loopback.h - for socket tests: a plain TCP client connected to 127.0.0.1. Header-only: tests
 * include it after <cmocka.h>. */
#ifndef FV_TESTS_LOOPBACK_H
#define FV_TESTS_LOOPBACK_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connects to port; rcvbuf (bytes, 0 = the kernel's) shrinks the receive buffer first, so a
 * test can play a slow reader; nonblock makes reads and writes return EAGAIN instead of
 * waiting. Fails the test when the connection is refused. */
static inline int fv_test_connect(int port, int rcvbuf, bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf)
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (nonblock)
        assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    return fd;
}

/* A base port for a runtime of up to 20 modules: the first of `slots` candidate bases (20
 * apart from lo, starting at one picked from the pid) whose 20 ports can all be bound on
 * 127.0.0.1 now. Integration scripts pick theirs from the same range at random, so a fixed
 * base per pid alone could collide with one of theirs running in parallel. */
static inline int fv_test_port_base(int lo, unsigned slots)
{
    unsigned first = ((unsigned)getpid() * 7919u) % slots;
    for (unsigned k = 0; k < slots; k++) {
        int base = lo + (int)((first + k) % slots) * 20;
        bool free_all = true;
        for (int p = base; p < base + 20 && free_all; p++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd < 0)
                return base;
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            free_all = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
            close(fd);
        }
        if (free_all)
            return base;
    }
    return lo + (int)first * 20;
}

#endif
