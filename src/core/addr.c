/* addr.c - listen address facts, shared by every check that refuses an unsafe default off
 * loopback (the registry's ACL policy, the token secret). */
#include "core/addr.h"

#include <arpa/inet.h>
#include <string.h>

bool fv_bind_is_public(const char *bind)
{
    if (!bind || !*bind || strcmp(bind, "localhost") == 0)
        return false;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, bind, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) != 127;
    if (inet_pton(AF_INET6, bind, &a6) == 1)
        return !IN6_IS_ADDR_LOOPBACK(&a6);
    return true;
}
