/* world_rng.c - the world's randomness: a counter-based generator (splitmix64's finaliser over
 * the seed and two counters), so a draw depends only on what it is for (region, epoch, cell)
 * and nothing needs saving or replaying. Not for secrets. */
#include "services/world-engine/world_rules.h"

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t world_rng_hash(uint64_t seed, uint64_t a, uint64_t b)
{
    return mix(mix(mix(seed) ^ a) ^ b);
}

double world_rng_unit(uint64_t seed, uint64_t a, uint64_t b)
{
    /* the top 53 bits: every double in [0, 1) with that spacing, exactly */
    return (double)(world_rng_hash(seed, a, b) >> 11) * (1.0 / 9007199254740992.0);
}
