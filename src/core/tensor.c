/* core/tensor.c — tensor construction, shape helpers, finiteness checks. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "core/op.h"

char *gr_shape_str(const gr_tensor *t, char *buf, size_t n) {
  if (!t) {
    snprintf(buf, n, "(null)");
    return buf;
  }
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < t->ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)t->shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

bool gr_same_shape(const gr_tensor *a, const gr_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

gr_status gr_check_shape(int ndim, const int64_t *shape, int64_t *numel_out) {
  if (ndim < 0 || ndim > GR_MAX_DIMS)
    return gr_error(GR_ESHAPE, "tensor: %d dims (0..%d allowed)", ndim, GR_MAX_DIMS);
  if (ndim > 0 && !shape) return gr_error(GR_EARG, "tensor: shape is NULL");
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return gr_error(GR_ESHAPE, "tensor: dim %d is negative (%lld)", i, (long long)shape[i]);
    if (shape[i] && n > GR_MAX_NUMEL / shape[i])
      return gr_error(GR_ENOMEM, "tensor: shape too large (more than 2^40 elements)");
    n *= shape[i];
  }
  if (numel_out) *numel_out = n;
  return GR_OK;
}

#if defined(__AVX2__) && defined(__FMA__)
/* Whether x[0..n) holds a NaN or Inf: x * 0 is NaN exactly for those, and
 * sums of zeros stay zero, so one FMA per 8 floats (4 independent chains;
 * the exponent-mask test took 3 vector ops each, ~1.5% of the MLP step in
 * the optimizer's check of every gradient). */
static bool block_nonfinite(const float *x, int64_t n) {
  __m256 zero = _mm256_setzero_ps(), a0 = zero, a1 = zero, a2 = zero, a3 = zero;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), zero, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), zero, a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), zero, a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), zero, a3);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  float t = 0;
  for (; i < n; i++) t += x[i] * 0.0f;
  return _mm256_movemask_ps(_mm256_cmp_ps(s, s, _CMP_UNORD_Q)) || t != t;
}
#else
static bool block_nonfinite(const float *x, int64_t n) {
  uint32_t bad = 0; /* an all-ones exponent is Inf or NaN; an OR without exits vectorizes */
  for (int64_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, x + i, sizeof u);
    bad |= (u & 0x7f800000u) == 0x7f800000u;
  }
  return bad;
}
#endif

int64_t gr_find_nonfinite(const float *x, int64_t n) {
  enum { BLOCK = 1024 };
  for (int64_t s = 0; s < n; s += BLOCK) {
    int64_t e = n - s < BLOCK ? n : s + BLOCK;
    if (block_nonfinite(x + s, e - s))
      for (int64_t i = s; i < e; i++)
        if (!isfinite(x[i])) return i;
  }
  return -1;
}

gr_status gr_check_finite(const gr_tensor *t, const char *what) {
  int64_t i = gr_find_nonfinite(t->data, t->numel);
  if (i >= 0)
    return gr_error(GR_ENUMERIC, "%s: element %lld is %s", what, (long long)i,
                    isnan(t->data[i]) ? "NaN" : "Inf");
  return GR_OK;
}

/* zero_data false: the caller overwrites every element (gr_tensor_new_uninit). */
static gr_tensor *tensor_alloc(gr_arena *a, int ndim, const int64_t *shape, bool with_grad, bool zero_data) {
  int64_t numel;
  if (gr_check_shape(ndim, shape, &numel)) return NULL;
  gr_tensor *t = gr_arena_alloc(a, sizeof *t);
  if (!t) return NULL;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->numel = numel;
  size_t bytes = (size_t)numel * sizeof(float);
  t->data = zero_data ? gr_arena_alloc(a, bytes) : gr_arena_alloc_uninit(a, bytes);
  if (!t->data) return NULL;
  if (with_grad) {
    t->grad = gr_arena_alloc(a, (size_t)numel * sizeof(float));
    if (!t->grad) return NULL;
    t->requires_grad = true;
  }
  return t;
}

gr_tensor *gr_tensor_new_in(gr_arena *a, int ndim, const int64_t *shape, bool requires_grad) {
  if (!a) {
    gr_error(GR_EARG, "tensor: arena is NULL");
    return NULL;
  }
  return tensor_alloc(a, ndim, shape, requires_grad, true);
}

void gr_tensor_zero_grad(gr_tensor *t) {
  if (t && t->grad) memset(t->grad, 0, (size_t)t->numel * sizeof(float));
  if (t) t->grad_zero = false;
}

void gr_tensor_fill(gr_tensor *t, float v) {
  for (int64_t i = 0; i < t->numel; i++) t->data[i] = v;
}

gr_tensor *gr_tensor_new(gr_ctx *c, int ndim, const int64_t *shape) {
  if (!c) {
    gr_error(GR_EARG, "tensor: context is NULL");
    return NULL;
  }
  return tensor_alloc(gr_ctx_arena(c), ndim, shape, false, true);
}

gr_tensor *gr_tensor_new_uninit(gr_ctx *c, int ndim, const int64_t *shape) {
  if (!c) {
    gr_error(GR_EARG, "tensor: context is NULL");
    return NULL;
  }
  return tensor_alloc(gr_ctx_arena(c), ndim, shape, false, false);
}

gr_tensor *gr_tensor_from(gr_ctx *c, int ndim, const int64_t *shape, const float *src) {
  gr_tensor *t = src ? gr_tensor_new_uninit(c, ndim, shape) : gr_tensor_new(c, ndim, shape);
  if (t && src) memcpy(t->data, src, (size_t)t->numel * sizeof(float));
  return t;
}

gr_tensor *gr_scalar(gr_ctx *c, float v) {
  gr_tensor *t = gr_tensor_new(c, 0, NULL);
  if (t) t->data[0] = v;
  return t;
}

gr_tensor *gr_leaf(gr_ctx *c, int ndim, const int64_t *shape, const float *src) {
  if (!c) {
    gr_error(GR_EARG, "tensor: context is NULL");
    return NULL;
  }
  gr_tensor *t = tensor_alloc(gr_ctx_arena(c), ndim, shape, true, true);
  if (t && src) memcpy(t->data, src, (size_t)t->numel * sizeof(float));
  return t;
}

gr_tensor *gr_tensor_like(gr_ctx *c, const gr_tensor *t) {
  return gr_tensor_new(c, t->ndim, t->shape);
}

int gr_axis(const char *op, const gr_tensor *t, int axis) {
  int a = axis < 0 ? axis + t->ndim : axis;
  if (a < 0 || a >= t->ndim) {
    char s[128];
    gr_error(GR_EARG, "%s: axis %d out of range for shape %s", op, axis, gr_shape_str(t, s, sizeof s));
    return -1;
  }
  return a;
}
