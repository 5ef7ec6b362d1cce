/* graft/tensor.h — tensors, arenas, the context and the autograd tape.
 *
 * Memory model
 * ------------
 * A tensor is an f32, row-major, contiguous block of up to GR_MAX_DIMS dims.
 * Tensors never own memory: their data (and grad) live in an arena.
 *  - A *persistent* arena (gr_arena_new) holds parameters, their gradients and
 *    optimizer state. It is owned by the model and freed in one call.
 *  - Each gr_ctx has a *step* arena for activations and the tape of one
 *    training step. gr_ctx_reset() rewinds it after the optimizer step; it
 *    keeps its memory (coalesced into one block), so a steady-state training
 *    step does no malloc at all (gr_alloc_count() proves it in a test).
 * Views: gr_reshape() shares data with its input; transpose, permute and
 * slice copy (cheap at our sizes, and keeps every kernel contiguous).
 *
 * Autograd
 * --------
 * Define-by-run: every op called on a gr_ctx records a node on the ctx's tape
 * when grad mode is on and any input requires grad. gr_backward(loss) walks
 * the tape in reverse and *accumulates* into each input's grad, so a tensor
 * used twice gets the sum of both contributions. Parameter grads persist
 * until gr_tensor_zero_grad(); activation grads live in the step arena.
 * A grad may be marked zero (grad_zero, set by gr_model_zero_grad) instead
 * of written with zeros: the backward's first write to it then stores
 * instead of accumulating, and readers outside a backward see the zeros
 * once gr_model_grad_sync() (graft/nn.h) has written them.
 *
 * Errors
 * ------
 * Ops return NULL on error with gr_last_error() naming the op and shapes; a
 * NULL input makes an op return NULL with GR_EARG, so a chain of ops can be
 * checked once at the end. */
#ifndef GRAFT_TENSOR_H
#define GRAFT_TENSOR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graft/rng.h"
#include "graft/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GR_MAX_DIMS 8
/* Largest element count graft accepts for one tensor (2^40): larger requests
 * are treated as corrupt sizes, not attempted. */
#define GR_MAX_NUMEL ((int64_t)1 << 40)

/* ---- allocation ------------------------------------------------------- */
/* All library heap allocations go through these (counted, 64-byte aligned). */
void *gr_malloc(size_t bytes);
void *gr_calloc(size_t n, size_t size);
void gr_free(void *p);
uint64_t gr_alloc_count(void); /* number of gr_malloc/gr_calloc calls so far */

typedef struct gr_arena gr_arena;
gr_arena *gr_arena_new(size_t initial_bytes);
void gr_arena_free(gr_arena *a);
/* 64-byte aligned, zero-filled. NULL (GR_ENOMEM) when out of memory. */
void *gr_arena_alloc(gr_arena *a, size_t bytes);
/* Forget every allocation; keep (and coalesce) the memory for reuse. */
void gr_arena_reset(gr_arena *a);
size_t gr_arena_used(const gr_arena *a);
size_t gr_arena_capacity(const gr_arena *a);

/* ---- tensor ----------------------------------------------------------- */
typedef struct gr_node gr_node;

typedef struct gr_tensor {
  float *data;
  float *grad;          /* same numel as data; NULL until needed */
  int64_t shape[GR_MAX_DIMS];
  int ndim;             /* 0 = scalar (numel 1) */
  int64_t numel;
  bool requires_grad;
  bool grad_zero;       /* grad reads as all zeros whatever its memory holds */
  gr_node *node;        /* op that produced it on the current tape, or NULL */
  const char *name;     /* optional (parameter name), used in messages */
} gr_tensor;

/* A compound literal shape: gr_tensor_new(c, 2, GR_SHAPE(3, 4)). */
#define GR_SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* Shape helpers. gr_shape_str writes "[2,3,4]" into buf and returns buf. */
char *gr_shape_str(const gr_tensor *t, char *buf, size_t n);
bool gr_same_shape(const gr_tensor *a, const gr_tensor *b);
/* Validates ndim/dims (no negative dim, product <= GR_MAX_NUMEL). */
gr_status gr_check_shape(int ndim, const int64_t *shape, int64_t *numel_out);
/* GR_ENUMERIC naming `what` if any element is NaN or Inf. */
gr_status gr_check_finite(const gr_tensor *t, const char *what);
/* Index of the first NaN or Inf in x[0..n), or -1 (vectorized: cheap enough
 * for every optimizer step). */
int64_t gr_find_nonfinite(const float *x, int64_t n);

/* A tensor in a persistent arena (parameters, buffers, optimizer state),
 * zero-filled; its grad is allocated too when requires_grad. */
gr_tensor *gr_tensor_new_in(gr_arena *a, int ndim, const int64_t *shape, bool requires_grad);
void gr_tensor_zero_grad(gr_tensor *t);
void gr_tensor_fill(gr_tensor *t, float v);

/* ---- context: step arena, tape, mode, rng ----------------------------- */
typedef struct gr_ctx gr_ctx;

/* step_arena_bytes is the initial size; the arena grows as needed. */
gr_ctx *gr_ctx_new(size_t step_arena_bytes, uint64_t seed);
void gr_ctx_free(gr_ctx *c);
/* Clear the tape and rewind the step arena (call after the optimizer step). */
void gr_ctx_reset(gr_ctx *c);
gr_arena *gr_ctx_arena(gr_ctx *c);
gr_rng *gr_ctx_rng(gr_ctx *c);                 /* dropout masks etc. */
void gr_ctx_set_training(gr_ctx *c, bool on);  /* dropout, batch-norm mode */
bool gr_ctx_training(const gr_ctx *c);
void gr_ctx_set_grad(gr_ctx *c, bool on);      /* record the tape or not */
bool gr_ctx_grad(const gr_ctx *c);
int gr_ctx_tape_len(const gr_ctx *c);

/* Activation tensors in the step arena (zero-filled, requires_grad false). */
gr_tensor *gr_tensor_new(gr_ctx *c, int ndim, const int64_t *shape);
gr_tensor *gr_tensor_from(gr_ctx *c, int ndim, const int64_t *shape, const float *src);
gr_tensor *gr_scalar(gr_ctx *c, float v);
/* A leaf in the step arena that requires grad (grad zero-filled): for tests
 * and for inputs whose gradient is wanted. */
gr_tensor *gr_leaf(gr_ctx *c, int ndim, const int64_t *shape, const float *src);

/* fn(arg) runs once at the end of the next reverse pass on this tape (not
 * at all if the tape is reset first); a pair already registered is not
 * added twice. At most GR_CTX_MAX_HOOKS pairs: beyond that, fn(arg) runs
 * now. gr_model_forward uses it to write the zeros of grads a reverse pass
 * did not reach. */
#define GR_CTX_MAX_HOOKS 16
void gr_ctx_after_backward(gr_ctx *c, void (*fn)(void *), void *arg);

/* Reverse pass from a scalar loss (seed 1). GR_ENUMERIC if loss is not finite. */
gr_status gr_backward(gr_ctx *c, gr_tensor *loss);
/* Reverse pass from any tensor with an explicit seed gradient (numel floats). */
gr_status gr_backward_seed(gr_ctx *c, gr_tensor *out, const float *seed_grad);

/* ---- threads ---------------------------------------------------------- */
/* Sets graft's thread count to n (n <= 0: default, GRAFT_THREADS or the
 * number of cores): the OpenMP threads of the ops, which also split large
 * gemms; OpenBLAS itself runs single-threaded, so there is one pool and no
 * oversubscription. */
void gr_set_threads(int n);
int gr_threads(void);
/* The default count gr_set_threads(0) takes: GRAFT_THREADS, else the number
 * of cores (>= 1). Reads only the environment: callable before anything. */
int gr_threads_default(void);

#ifdef __cplusplus
}
#endif
#endif
