/* test_peer_limit.c - per-address connection counts: IPv4, IPv6, IPv4-mapped IPv6 as IPv4,
 * unknown families not counted, counts down to removal, and many addresses across growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net/peer_limit.h"

static fv_peer_key_t v4(const char *ip)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(1234);
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    fv_peer_key_t k;
    fv_peer_key_from((struct sockaddr *)&a, &k);
    return k;
}

static fv_peer_key_t v6(const char *ip, unsigned short port)
{
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    fv_peer_key_t k;
    fv_peer_key_from((struct sockaddr *)&a, &k);
    return k;
}

static void counts_per_address(void **state)
{
    fv_peer_limit_t *t = fv_peer_limit_new();
    fv_peer_key_t a = v4("10.0.0.1"), b = v4("10.0.0.2");
    assert_int_equal(fv_peer_limit_add(t, &a), 1);
    assert_int_equal(fv_peer_limit_add(t, &a), 2);
    assert_int_equal(fv_peer_limit_add(t, &b), 1);
    assert_int_equal(fv_peer_limit_size(t), 2);
    fv_peer_limit_remove(t, &a);
    assert_int_equal(fv_peer_limit_add(t, &a), 2);
    fv_peer_limit_remove(t, &a);
    fv_peer_limit_remove(t, &a);
    assert_int_equal(fv_peer_limit_size(t), 1);
    fv_peer_limit_remove(t, &a);             /* not counted: ignored */
    assert_int_equal(fv_peer_limit_size(t), 1);
    fv_peer_limit_remove(t, &b);
    assert_int_equal(fv_peer_limit_size(t), 0);
    fv_peer_limit_free(t);
    fv_peer_limit_free(NULL);
}

static void families(void **state)
{
    fv_peer_limit_t *t = fv_peer_limit_new();
    fv_peer_key_t a = v4("192.0.2.7"), mapped = v6("::ffff:192.0.2.7", 9),
                  six = v6("2001:db8::1", 1), six2 = v6("2001:db8::1", 2);
    assert_int_equal(a.len, 4);
    assert_int_equal(mapped.len, 4);
    assert_int_equal(six.len, 16);
    assert_int_equal(fv_peer_limit_add(t, &a), 1);
    assert_int_equal(fv_peer_limit_add(t, &mapped), 2);   /* the same client */
    assert_int_equal(fv_peer_limit_add(t, &six), 1);
    assert_int_equal(fv_peer_limit_add(t, &six2), 2);      /* ports do not matter */
    struct sockaddr other;
    memset(&other, 0, sizeof(other));
    other.sa_family = AF_UNIX;
    fv_peer_key_t u;
    fv_peer_key_from(&other, &u);
    assert_int_equal(u.len, 0);
    assert_int_equal(fv_peer_limit_add(t, &u), 0);
    assert_int_equal(fv_peer_limit_size(t), 2);
    fv_peer_limit_free(t);
}

static void many_addresses(void **state)
{
    fv_peer_limit_t *t = fv_peer_limit_new();
    char ip[32];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
            fv_peer_key_t k = v4(ip);
            assert_int_equal(fv_peer_limit_add(t, &k), (uint32_t)round + 1);
        }
    }
    assert_int_equal(fv_peer_limit_size(t), 5000);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
            fv_peer_key_t k = v4(ip);
            fv_peer_limit_remove(t, &k);
        }
    }
    assert_int_equal(fv_peer_limit_size(t), 0);
    fv_peer_limit_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(counts_per_address),
        cmocka_unit_test(families),
        cmocka_unit_test(many_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
