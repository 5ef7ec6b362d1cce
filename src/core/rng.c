/* core/rng.c — xoshiro256** seeded by splitmix64; derived distributions. */
#include <math.h>

#include "graft/rng.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void gr_rng_seed(gr_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
  r->has_spare = false;
  r->spare = 0;
}

gr_rng gr_rng_stream(uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ 0x6a09e667f3bcc909ULL;
  uint64_t mixed = splitmix64(&x) ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
  gr_rng r;
  gr_rng_seed(&r, mixed);
  return r;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gr_rng_next(gr_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

float gr_rng_uniform(gr_rng *r) { return (float)(gr_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

float gr_rng_normal(gr_rng *r) {
  if (r->has_spare) {
    r->has_spare = false;
    return r->spare;
  }
  double u1 = ((double)(gr_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0,1] */
  double u2 = (double)(gr_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
  double rad = sqrt(-2.0 * log(u1));
  r->spare = (float)(rad * sin(2.0 * M_PI * u2));
  r->has_spare = true;
  return (float)(rad * cos(2.0 * M_PI * u2));
}

bool gr_rng_bernoulli(gr_rng *r, float p) { return gr_rng_uniform(r) < p; }

uint64_t gr_rng_below(gr_rng *r, uint64_t n) {
  if (n == 0) return 0;
  uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
  uint64_t x;
  do x = gr_rng_next(r);
  while (x >= limit);
  return x % n;
}

void gr_rng_permutation(gr_rng *r, int64_t n, int64_t *out) {
  for (int64_t i = 0; i < n; i++) out[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)gr_rng_below(r, (uint64_t)i + 1);
    int64_t t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
}

void gr_rng_fill_uniform(gr_rng *r, float *x, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * gr_rng_uniform(r);
}

void gr_rng_fill_normal(gr_rng *r, float *x, int64_t n, float mean, float std) {
  for (int64_t i = 0; i < n; i++) x[i] = mean + std * gr_rng_normal(r);
}

uint64_t gr_fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}
