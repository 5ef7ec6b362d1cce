/* graft/rng.h — the one seeded random number generator (xoshiro256**).
 *
 * Passed explicitly everywhere randomness is needed; the same seed gives the
 * same bits on every machine. gr_rng_stream() derives independent streams
 * (per data-loader, per MPI rank) from one seed without sharing state. */
#ifndef GRAFT_RNG_H
#define GRAFT_RNG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gr_rng {
  uint64_t s[4];
  bool has_spare;  /* Box-Muller keeps its second normal */
  float spare;
} gr_rng;

void gr_rng_seed(gr_rng *r, uint64_t seed);
/* An independent generator for (seed, stream): seeds with splitmix64 of both. */
gr_rng gr_rng_stream(uint64_t seed, uint64_t stream);
uint64_t gr_rng_next(gr_rng *r);
float gr_rng_uniform(gr_rng *r);            /* [0, 1), 24 random bits */
float gr_rng_normal(gr_rng *r);             /* N(0, 1) */
bool gr_rng_bernoulli(gr_rng *r, float p);  /* true with probability p */
uint64_t gr_rng_below(gr_rng *r, uint64_t n); /* uniform in [0, n), unbiased */
void gr_rng_permutation(gr_rng *r, int64_t n, int64_t *out); /* Fisher-Yates */
void gr_rng_fill_uniform(gr_rng *r, float *x, int64_t n, float lo, float hi);
void gr_rng_fill_normal(gr_rng *r, float *x, int64_t n, float mean, float std);

/* FNV-1a over the bytes p[0..n), continued from h (a new hash starts at
 * GR_FNV1A_OFFSET): names, cache keys and content hashes (not random, but
 * the one hash of bytes beside the generator). */
#define GR_FNV1A_OFFSET 1469598103934665603ull
uint64_t gr_fnv1a(uint64_t h, const void *p, size_t n);

#endif
