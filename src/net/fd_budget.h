/* fd_budget.h - how many accepted connections the process may hold at once, from its
 * descriptor limit. Past the limit accept(2) fails, and then nothing can be answered at all:
 * libuv accepts and closes the waiting connections without a word, on every port at once.
 * Keeping a reserve below the limit instead lets a full process still accept, answer 503 and
 * close, and leaves descriptors for what the modules open themselves (store connections,
 * upstream connections, files). One budget for the whole process, shared by every listener. */
#ifndef FV_NET_FD_BUDGET_H
#define FV_NET_FD_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

/* Counts one more accepted connection when the budget allows it; false when it does not (the
 * connection should be answered 503 and closed). */
bool fv__fd_budget_take(void);
/* A connection counted by fv__fd_budget_take() is gone. */
void fv__fd_budget_release(void);

/* Connections held now, and the ceiling: RLIMIT_NOFILE's soft limit less a reserve of a
 * sixteenth of it (at least 32), read once. */
size_t fv__fd_budget_used(void);
size_t fv__fd_budget_limit(void);

/* Tests: a ceiling of n connections (0: from the descriptor limit again). */
void fv__fd_budget_set_limit(size_t n);

#endif
