/* transfer/merge/slerp.c — spherical linear interpolation of two models
 * (Shoemake 1985; mergekit merge_methods/slerp.py). v0 = the base model (t = 0
 * gives it), v1 = the other model, whole tensor flattened:
 *   dot = <v0/‖v0‖, v1/‖v1‖> (a norm <= 1e-8 is left unnormalized);
 *   |dot| > 0.9995 (colinear or anti-parallel): θ = (1−t) v0 + t v1;
 *   else Ω = arccos(dot): θ = sin((1−t)Ω)/sin Ω · v0 + sin(tΩ)/sin Ω · v1.
 * Norms and the dot product are accumulated in double. */
#include <math.h>

#include "transfer/merge/merge_internal.h"

gr_status merge_slerp(const gr_merge_args *a, float *out) {
  const float *v0 = a->base, *v1 = a->models[0];
  int64_t n = a->numel;
  double n00 = 0, n11 = 0, d01 = 0;
#pragma omp parallel for schedule(static, MERGE_CHUNK) reduction(+ : n00, n11, d01) if (n > MERGE_CHUNK)
  for (int64_t j = 0; j < n; j++) {
    double x = v0[j], y = v1[j];
    n00 += x * x;
    n11 += y * y;
    d01 += x * y;
  }
  double norm0 = sqrt(n00), norm1 = sqrt(n11), eps = 1e-8;
  double dot = d01 / (norm0 > eps ? norm0 : 1.0) / (norm1 > eps ? norm1 : 1.0);
  double t = a->t, s0, s1;
  if (fabs(dot) > 0.9995) {
    s0 = 1.0 - t;
    s1 = t;
  } else {
    double omega = acos(dot), so = sin(omega);
    s0 = sin(omega - omega * t) / so;
    s1 = sin(omega * t) / so;
  }
  float f0 = (float)s0, f1 = (float)s1;
#pragma omp parallel for schedule(static, MERGE_CHUNK) if (n > MERGE_CHUNK)
  for (int64_t j = 0; j < n; j++) out[j] = f0 * v0[j] + f1 * v1[j];
  return GR_OK;
}
