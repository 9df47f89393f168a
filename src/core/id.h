/* id.h - identifiers: request ids for logs and error bodies, random hex ids for instances. */
#ifndef FV_CORE_ID_H
#define FV_CORE_ID_H

#include <stddef.h>
#include <stdint.h>

/* Process-unique, increasing; never 0. */
uint64_t fv_id_next(void);

/* Writes 2*bytes random hex digits and a NUL into out (which holds 2*bytes+1). */
void fv_id_random_hex(char *out, size_t bytes);

#endif
