/* fd_budget.c - the process-wide ceiling on accepted connections (see fd_budget.h). The loop is
 * single-threaded; a process with several loops shares the count, which only makes it
 * stricter. */
#include "net/fd_budget.h"

#include <sys/resource.h>

#define FD_RESERVE_MIN 32

static size_t used;
static size_t limit;          /* 0: not read yet */

size_t fv__fd_budget_limit(void)
{
    if (limit == 0) {
        struct rlimit rl;
        size_t soft = 1024;            /* what a process gets when it cannot tell */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
            soft = rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : (size_t)rl.rlim_cur;
        size_t reserve = soft / 16 > FD_RESERVE_MIN ? soft / 16 : FD_RESERVE_MIN;
        limit = soft > reserve + 1 ? soft - reserve : 1;
    }
    return limit;
}

bool fv__fd_budget_take(void)
{
    if (used >= fv__fd_budget_limit())
        return false;
    used++;
    return true;
}

void fv__fd_budget_release(void)
{
    if (used)
        used--;
}

size_t fv__fd_budget_used(void)
{
    return used;
}

void fv__fd_budget_set_limit(size_t n)
{
    limit = n;
}
