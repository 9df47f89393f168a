/* addr.h - facts about listen addresses. */
#ifndef FV_CORE_ADDR_H
#define FV_CORE_ADDR_H

#include <stdbool.h>

/* An instance's address as the registry lists it and the gRPC transport dials it. */
typedef struct fv_host_port {
    char host[64];
    int port;
} fv_host_port_t;

/* Whether clients beyond this machine may reach a server bound to bind: anything but an IPv4
 * 127/8 or IPv6 ::1 literal and "localhost" (another host name may resolve to anything, so it
 * counts as public). NULL or "" is not public. */
bool fv_bind_is_public(const char *bind);

#endif
