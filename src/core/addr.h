/* addr.h - facts about listen addresses. */
#ifndef FV_CORE_ADDR_H
#define FV_CORE_ADDR_H

#include <stdbool.h>

/* Whether clients beyond this machine may reach a server bound to bind: anything but an IPv4
 * 127/8 or IPv6 ::1 literal and "localhost" (another host name may resolve to anything, so it
 * counts as public). NULL or "" is not public. */
bool fv_bind_is_public(const char *bind);

#endif
