/* peer_limit.h - open connections counted per client address (IPv4, or IPv6; an IPv4-mapped
 * IPv6 address counts as its IPv4 address), for the server's per-client connection ceiling.
 * A hash table of counts; an address leaves it when its count drops to zero. Not thread-safe:
 * one table per server, used on its loop. */
#ifndef FV_NET_PEER_LIMIT_H
#define FV_NET_PEER_LIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct fv_peer_key {
    uint8_t addr[16];
    uint8_t len;                 /* 4 or 16; 0 = no address (not counted) */
} fv_peer_key_t;

typedef struct fv_peer_limit fv_peer_limit_t;

/* The key of a peer address; len 0 for a family other than IPv4/IPv6. */
void fv_peer_key_from(const struct sockaddr *sa, fv_peer_key_t *key);

fv_peer_limit_t *fv_peer_limit_new(void);
/* NULL-safe. */
void fv_peer_limit_free(fv_peer_limit_t *t);
/* Counts one more connection from key; returns the new count (0 for a key of len 0). */
uint32_t fv_peer_limit_add(fv_peer_limit_t *t, const fv_peer_key_t *key);
/* One connection from key is gone (a key that is not counted is ignored). */
void fv_peer_limit_remove(fv_peer_limit_t *t, const fv_peer_key_t *key);
/* Distinct addresses counted. */
size_t fv_peer_limit_size(const fv_peer_limit_t *t);

#endif
