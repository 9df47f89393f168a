/* hash.h - FNV-1a, the hash of our in-process tables keyed by ids, names and addresses: fast on
 * short keys and well spread. Not keyed: a table whose keys an attacker chooses in bulk bounds
 * its chains some other way (a ceiling on entries, growth with the count). */
#ifndef FV_CORE_HASH_H
#define FV_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FV_FNV1A_SEED 14695981039346656037ull  /* the 64-bit offset basis */

/* FNV-1a of data[0..len), continuing from h: FV_FNV1A_SEED for a fresh hash, or the result of
 * an earlier call to hash several pieces as one. */
uint64_t fv_fnv1a(uint64_t h, const void *data, size_t len);

#endif
