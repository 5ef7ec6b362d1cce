/* core/ctx.c — the context: step arena, tape, modes, and the reverse pass. */
#include <math.h>
#include <string.h>

#include "core/op.h"

struct gr_ctx {
  gr_arena *arena;
  gr_node *tape;  /* newest node first */
  int tape_len;
  bool training;
  bool grad_on;
  bool backward_done;
  bool tape_broken; /* a node could not be recorded (out of memory) */
  gr_rng rng;
  struct {
    void (*fn)(void *);
    void *arg;
  } hooks[GR_CTX_MAX_HOOKS]; /* gr_ctx_after_backward */
  int n_hooks;
};

gr_ctx *gr_ctx_new(size_t step_arena_bytes, uint64_t seed) {
  gr_ctx *c = gr_calloc(1, sizeof *c);
  if (!c) {
    gr_error(GR_ENOMEM, "context: out of memory");
    return NULL;
  }
  c->arena = gr_arena_new(step_arena_bytes);
  if (!c->arena) {
    gr_free(c);
    return NULL;
  }
  gr_threads(); /* first context fixes the default thread count */
  c->training = true;
  c->grad_on = true;
  gr_rng_seed(&c->rng, seed);
  return c;
}

void gr_ctx_free(gr_ctx *c) {
  if (!c) return;
  gr_arena_free(c->arena);
  gr_free(c);
}

void gr_ctx_reset(gr_ctx *c) {
  gr_arena_reset(c->arena);
  c->tape = NULL;
  c->tape_len = 0;
  c->backward_done = false;
  c->tape_broken = false;
  c->n_hooks = 0;
}

void gr_ctx_after_backward(gr_ctx *c, void (*fn)(void *), void *arg) {
  for (int i = 0; i < c->n_hooks; i++)
    if (c->hooks[i].fn == fn && c->hooks[i].arg == arg) return;
  if (c->n_hooks == GR_CTX_MAX_HOOKS) {
    fn(arg);
    return;
  }
  c->hooks[c->n_hooks].fn = fn;
  c->hooks[c->n_hooks++].arg = arg;
}

gr_arena *gr_ctx_arena(gr_ctx *c) { return c->arena; }
gr_rng *gr_ctx_rng(gr_ctx *c) { return &c->rng; }
void gr_ctx_set_training(gr_ctx *c, bool on) { c->training = on; }
bool gr_ctx_training(const gr_ctx *c) { return c->training; }
void gr_ctx_set_grad(gr_ctx *c, bool on) { c->grad_on = on; }
bool gr_ctx_grad(const gr_ctx *c) { return c->grad_on; }
int gr_ctx_tape_len(const gr_ctx *c) { return c->tape_len; }

void *gr_scratch(gr_ctx *c, size_t bytes) { return gr_arena_alloc(c->arena, bytes); }
void *gr_scratch_uninit(gr_ctx *c, size_t bytes) { return gr_arena_alloc_uninit(c->arena, bytes); }

gr_node *gr_tape_record(gr_ctx *c, const gr_op_def *op, gr_tensor *out, int n_in,
                        gr_tensor *const *in) {
  bool any = false;
  for (int k = 0; k < n_in; k++) any |= in[k] && in[k]->requires_grad;
  out->requires_grad = any && c->grad_on;
  if (!out->requires_grad) return NULL;
  gr_node *n = gr_arena_alloc(c->arena, sizeof *n);
  gr_tensor **ins = n ? gr_arena_alloc(c->arena, (size_t)n_in * sizeof *ins) : NULL;
  if (!n || !ins) { /* remembered: gr_backward refuses an incomplete tape */
    c->tape_broken = true;
    out->requires_grad = false;
    return NULL;
  }
  memcpy(ins, in, (size_t)n_in * sizeof *ins);
  n->op = op;
  n->out = out;
  n->in = ins;
  n->n_in = n_in;
  n->prev = c->tape;
  c->tape = n;
  c->tape_len++;
  out->node = n;
  return n;
}

float *gr_grad_buf(gr_ctx *c, gr_tensor *t) {
  bool fresh;
  float *g = gr_grad_buf_fresh(c, t, &fresh);
  if (fresh) gr_fill_floats(g, NULL, t->numel);
  return g;
}

float *gr_grad_buf_fresh(gr_ctx *c, gr_tensor *t, bool *fresh) {
  *fresh = !t->grad || t->grad_zero;
  t->grad_zero = false;
  if (!t->grad) t->grad = gr_arena_alloc_uninit(c->arena, (size_t)t->numel * sizeof(float));
  GR_ASSERT(t->grad != NULL); /* step arena exhausted mid-backward */
  return t->grad;
}

static gr_status run_tape(gr_ctx *c) {
  for (gr_node *n = c->tape; n; n = n->prev)
    if (n->out->grad) n->op->backward(c, n);
  c->backward_done = true;
  for (int i = 0; i < c->n_hooks; i++) c->hooks[i].fn(c->hooks[i].arg);
  c->n_hooks = 0;
  return GR_OK;
}

gr_status gr_backward_seed(gr_ctx *c, gr_tensor *out, const float *seed_grad) {
  if (!c || !out || !seed_grad) return gr_error(GR_EARG, "backward: NULL argument");
  if (c->backward_done)
    return gr_error(GR_ESTATE, "backward: already run on this tape (call gr_ctx_reset first)");
  if (c->tape_broken)
    return gr_error(GR_ENOMEM, "backward: the tape is incomplete (out of memory while recording)");
  if (!out->requires_grad)
    return gr_error(GR_ESTATE, "backward: output does not require grad (no tape to walk)");
  float *g = gr_grad_buf(c, out);
  for (int64_t i = 0; i < out->numel; i++) g[i] += seed_grad[i];
  return run_tape(c);
}

gr_status gr_backward(gr_ctx *c, gr_tensor *loss) {
  if (!c || !loss) return gr_error(GR_EARG, "backward: NULL argument");
  if (loss->numel != 1) {
    char s[128];
    return gr_error(GR_ESHAPE, "backward: loss must be a scalar, got shape %s",
                    gr_shape_str(loss, s, sizeof s));
  }
  if (!isfinite(loss->data[0]))
    return gr_error(GR_ENUMERIC, "backward: loss is %s", isnan(loss->data[0]) ? "NaN" : "Inf");
  const float one = 1.0f;
  return gr_backward_seed(c, loss, &one);
}
