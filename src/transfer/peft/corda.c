/* transfer/peft/corda.c — CorDA: context-oriented decomposition adaptation.
 *
 * Paper: Yang et al., "CorDA: Context-Oriented Decomposition Adaptation of
 * Large Language Models" (NeurIPS 2024), sec. 3: W C = U S V^T with C the
 * covariance of the layer's inputs on calibration data, W = U S (V^T C^-1);
 * knowledge-preserved mode adapts the r smallest components (the directions
 * the calibration data hardly use), instruction-previewed mode the r
 * largest. Implemented as Hugging Face PEFT does (tuners/lora/corda.py:
 * calib_cov_distribution, collect_eigens_for_layer with its damping loop,
 * crop_corda_eigens; LoraLayer.corda_init), equations in graft/corda.h.
 * What it changes in the model: a LoRA module (lora.c) keeps its kind and
 * forward; its lora_A/lora_B get the selected components and its base
 * weight becomes the residual W - scaling B A, so the output is unchanged
 * at initialization. Conv2d layers use the unfolded k x k input patches as
 * rows of X (the weight is then [out, C_in*k*k] and A a k x k conv, B 1x1:
 * the LoRA conv layout).
 * Not here: the LoRA module itself (lora.c), the transfer-registry rows
 * (bottom of this file only call into lora's setup). */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "graft/corda.h"
#include "graft/peft.h"
#include "transfer/methods.h"

/* ---- covariance ------------------------------------------------------------- */
gr_status gr_corda_cov_init(gr_corda_cov *cov, int64_t dim) {
  if (!cov) return gr_error(GR_EARG, "CorDA covariance: NULL");
  memset(cov, 0, sizeof *cov);
  if (dim < 1 || dim > (1 << 15)) return gr_error(GR_EARG, "CorDA covariance: dim %lld out of range", (long long)dim);
  cov->c = gr_calloc((size_t)(dim * dim), sizeof(double));
  if (!cov->c) return gr_error(GR_ENOMEM, "CorDA covariance: out of memory for %lld x %lld", (long long)dim, (long long)dim);
  cov->dim = dim;
  return GR_OK;
}

void gr_corda_cov_free(gr_corda_cov *cov) {
  if (!cov) return;
  gr_free(cov->c);
  memset(cov, 0, sizeof *cov);
}

gr_status gr_corda_cov_add(gr_corda_cov *cov, const float *x, int64_t rows, const char *what) {
  if (!cov || !cov->c || !x || rows < 1) return gr_error(GR_EARG, "CorDA covariance of %s: no input", what ? what : "?");
  int64_t d = cov->dim, n = rows * d;
  if (gr_find_nonfinite(x, n) >= 0) return gr_error(GR_ENUMERIC, "CorDA covariance of %s: input holds NaN or Inf", what);
  float mx = x[0];
  for (int64_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
  double scale = fabs((double)mx); /* PEFT: input / torch.max(input).abs() */
  if (scale == 0) return gr_error(GR_ENUMERIC, "CorDA covariance of %s: max of the input is 0", what);
  double *xd = gr_malloc((size_t)n * sizeof(double));
  if (!xd) return gr_error(GR_ENOMEM, "CorDA covariance of %s: out of memory", what);
  for (int64_t i = 0; i < n; i++) xd[i] = x[i] / scale;
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)rows, 1.0, xd, (int)d, 1.0, cov->c, (int)d);
  gr_free(xd);
  cov->calls++;
  return GR_OK;
}

gr_status gr_corda_cov_finish(gr_corda_cov *cov) {
  if (!cov || !cov->c) return gr_error(GR_EARG, "CorDA covariance: NULL");
  if (cov->calls < 1) return gr_error(GR_ESTATE, "CorDA covariance: no forward call was recorded");
  int64_t d = cov->dim;
  for (int64_t i = 0; i < d; i++)
    for (int64_t j = i; j < d; j++) cov->c[j * d + i] = cov->c[i * d + j] /= (double)cov->calls;
  cov->calls = 1;
  return GR_OK;
}

/* ---- decomposition ---------------------------------------------------------- */
/* C' = C + damp mean(diag C) I and its inverse, damp doubled from 0.01 until
 * ||C' C'^-1 - I||_F < 0.05 (PEFT collect_eigens_for_layer). */
static gr_status damped_inverse(const double *c, int64_t d, double *fix, double *inv, double *damp_out) {
  double mean = 0;
  for (int64_t i = 0; i < d; i++) mean += c[i * d + i];
  mean /= (double)d;
  lapack_int *piv = gr_malloc((size_t)d * sizeof *piv);
  double *prod = gr_malloc((size_t)(d * d) * sizeof(double));
  gr_status s = piv && prod ? GR_ENUMERIC : gr_error(GR_ENOMEM, "CorDA: out of memory (dim %lld)", (long long)d);
  double damp = 0.01;
  for (int it = 0; it < 64 && s == GR_ENUMERIC; it++, damp *= 2) {
    memcpy(fix, c, (size_t)(d * d) * sizeof(double));
    for (int64_t i = 0; i < d; i++) fix[i * d + i] += damp * mean;
    memcpy(inv, fix, (size_t)(d * d) * sizeof(double));
    if (LAPACKE_dgetrf(LAPACK_ROW_MAJOR, (lapack_int)d, (lapack_int)d, inv, (lapack_int)d, piv) != 0 ||
        LAPACKE_dgetri(LAPACK_ROW_MAJOR, (lapack_int)d, inv, (lapack_int)d, piv) != 0)
      continue; /* singular: more damping */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d, (int)d, 1.0, fix, (int)d, inv, (int)d, 0.0,
                prod, (int)d);
    double err = 0;
    for (int64_t i = 0; i < d; i++)
      for (int64_t j = 0; j < d; j++) {
        double e = prod[i * d + j] - (i == j);
        err += e * e;
      }
    if (sqrt(err) < 0.05) s = GR_OK, *damp_out = damp;
  }
  gr_free(piv), gr_free(prod);
  if (s == GR_ENUMERIC) return gr_error(GR_ENUMERIC, "CorDA: damped covariance stays singular (mean diag %g)", mean);
  return s;
}

static gr_status decompose_check(const float *w, int64_t out, int64_t in, const double *cov, int r, float scaling) {
  int64_t m = out < in ? out : in;
  if (!w || !cov || out < 1 || in < 1) return gr_error(GR_EARG, "CorDA decompose: NULL or empty weight/covariance");
  if (r < 1 || r > m)
    return gr_error(GR_EARG, "CorDA decompose: r=%d must be in [1, min(out=%lld, in=%lld)]", r, (long long)out,
                    (long long)in);
  if (!(scaling > 0) || !isfinite(scaling)) return gr_error(GR_EARG, "CorDA decompose: scaling %g must be > 0", scaling);
  if (gr_find_nonfinite(w, out * in) >= 0) return gr_error(GR_ENUMERIC, "CorDA decompose: weight holds NaN or Inf");
  for (int64_t i = 0; i < in * in; i++)
    if (!isfinite(cov[i])) return gr_error(GR_ENUMERIC, "CorDA decompose: covariance holds NaN or Inf");
  return GR_OK;
}

/* a = diag(sqrt S') Vhat^T, b = U diag(sqrt S') over the selected components;
 * balanced: row k of a divided and column k of b multiplied by
 * sqrt(||Vhat_k||), so both have norm sqrt(S'_k ||Vhat_k||) (U_k is a unit
 * vector). */
static void corda_factors(const double *u, const double *sv, const double *vhat_t, int64_t out, int64_t in, int64_t m,
                          int r, float scaling, gr_corda_mode mode, bool balanced, float *a, float *b) {
  for (int k = 0; k < r; k++) {
    int64_t idx = mode == GR_CORDA_KPM ? m - r + k : k;
    double root = sqrt(sv[idx] / scaling), g = 1, nv = 0;
    for (int64_t i = 0; balanced && i < in; i++) nv += vhat_t[idx * in + i] * vhat_t[idx * in + i];
    if (balanced && nv > 0) g = sqrt(sqrt(nv));
    for (int64_t i = 0; i < in; i++) a[k * in + i] = (float)(root * vhat_t[idx * in + i] / g);
    for (int64_t o = 0; o < out; o++) b[o * r + k] = (float)(u[o * m + idx] * root * g);
  }
}

gr_status gr_corda_decompose(const float *w, int64_t out, int64_t in, const double *cov, int r, float scaling,
                             gr_corda_mode mode, bool balanced, float *a, float *b, float *w_res, double *damp) {
  gr_status s = decompose_check(w, out, in, cov, r, scaling);
  if (s) return s;
  if (!a || !b || !w_res) return gr_error(GR_EARG, "CorDA decompose: NULL output");
  int64_t m = out < in ? out : in;
  size_t dd = (size_t)(in * in), od = (size_t)(out * in);
  double *fix = gr_malloc(dd * sizeof(double)), *inv = gr_malloc(dd * sizeof(double));
  double *wd = gr_malloc(od * sizeof(double)), *wc = gr_malloc(od * sizeof(double));
  double *u = gr_malloc((size_t)(out * m) * sizeof(double)), *vt = gr_malloc((size_t)(m * in) * sizeof(double));
  double *vhat_t = gr_malloc((size_t)(m * in) * sizeof(double)), *sv = gr_malloc((size_t)m * sizeof(double));
  double *superb = gr_malloc((size_t)m * sizeof(double)), damp_used = 0;
  if (!fix || !inv || !wd || !wc || !u || !vt || !vhat_t || !sv || !superb)
    s = gr_error(GR_ENOMEM, "CorDA decompose: out of memory (%lld x %lld)", (long long)out, (long long)in);
  if (!s) s = damped_inverse(cov, in, fix, inv, &damp_used);
  if (!s) {
    for (size_t i = 0; i < od; i++) wd[i] = w[i];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)out, (int)in, (int)in, 1.0, wd, (int)in, fix, (int)in,
                0.0, wc, (int)in);
    if (LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'S', (lapack_int)out, (lapack_int)in, wc, (lapack_int)in, sv, u,
                       (lapack_int)m, vt, (lapack_int)in, superb) != 0)
      s = gr_error(GR_ENUMERIC, "CorDA decompose: SVD of W C did not converge");
  }
  if (!s) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)in, (int)in, 1.0, vt, (int)in, inv, (int)in,
                0.0, vhat_t, (int)in);
    corda_factors(u, sv, vhat_t, out, in, m, r, scaling, mode, balanced, a, b);
    /* residual from the rounded factors, so W_res + scaling B A == W in f32 */
    for (int64_t o = 0; o < out; o++)
      for (int64_t i = 0; i < in; i++) {
        double ba = 0;
        for (int k = 0; k < r; k++) ba += (double)b[o * r + k] * a[k * in + i];
        w_res[o * in + i] = (float)(wd[o * in + i] - scaling * ba);
      }
    if (damp) *damp = damp_used;
  }
  gr_free(fix), gr_free(inv), gr_free(wd), gr_free(wc), gr_free(u), gr_free(vt), gr_free(vhat_t), gr_free(sv);
  gr_free(superb);
  return s;
}

/* ---- on a LoRA module ------------------------------------------------------- */
static gr_tensor *child_weight(gr_module *mod, const char *child) {
  return gr_module_param_get(gr_module_find(mod, child), "weight");
}

gr_status gr_corda_init(gr_module *lora, const gr_corda_cov *cov, gr_corda_mode mode, bool balanced) {
  char p[GR_NAME_MAX];
  if (!gr_lora_is(lora) || !cov || !cov->c) return gr_error(GR_EARG, "CorDA init: not a LoRA module or no covariance");
  gr_module_path(lora, p, sizeof p);
  gr_tensor *w = child_weight(lora, "base_layer"), *a = child_weight(lora, "lora_A"), *b = child_weight(lora, "lora_B");
  if (!w || !a || !b) return gr_error(GR_EARG, "CorDA init: LoRA module '%s' lacks base_layer/lora_A/lora_B", p);
  int r = gr_lora_rank(lora);
  int64_t out = w->shape[0], in = w->numel / w->shape[0];
  if (b->shape[0] != out || a->numel != (int64_t)r * in || b->numel != out * r)
    return gr_error(GR_EUNSUPPORTED, "CorDA init: '%s' has a layout CorDA does not handle (fan_in_fan_out?)", p);
  if (cov->dim != in)
    return gr_error(GR_ESHAPE, "CorDA init: covariance of '%s' is %lld x %lld, the layer has %lld inputs", p,
                    (long long)cov->dim, (long long)cov->dim, (long long)in);
  gr_status s = gr_corda_decompose(w->data, out, in, cov->c, r, gr_lora_scaling(lora), mode, balanced, a->data,
                                   b->data, w->data, NULL);
  if (s) return gr_error(s, "CorDA init of '%s': %s", p, gr_last_error());
  return GR_OK;
}

/* ---- covariance collection by input hooks --------------------------------- */
typedef struct corda_site {
  gr_module *lora, *base;
  gr_corda_cov cov;
  gr_tensor *unfold;   /* Conv2d: identity kernel [C*k*k, C, k, k] (unfold as a conv) */
  gr_conv2d_opts conv; /* the base conv's geometry */
} corda_site;

typedef struct corda_collect {
  corda_site *site;
  int n, cap;
  gr_ctx *scratch;     /* unfolding convs */
  gr_arena *arena;     /* identity kernels */
} corda_collect;

/* x [N, C, H, W] -> rows of k x k patches [N*Ho*Wo, C*k*k] via an identity conv. */
static gr_status add_conv_input(corda_collect *cc, corda_site *st, const gr_tensor *x, const char *what) {
  gr_tensor *xx = gr_tensor_from(cc->scratch, x->ndim, x->shape, x->data);
  gr_tensor *p = xx ? gr_conv2d(cc->scratch, xx, st->unfold, NULL, &st->conv) : NULL;
  if (!p) return gr_last_status();
  int64_t d = p->shape[1], l = p->shape[2] * p->shape[3], n = p->shape[0];
  float *rows = gr_malloc((size_t)(n * l * d) * sizeof(float));
  if (!rows) return gr_error(GR_ENOMEM, "CorDA: out of memory unfolding '%s'", what);
  for (int64_t s = 0; s < n; s++)
    for (int64_t j = 0; j < d; j++)
      for (int64_t q = 0; q < l; q++) rows[(s * l + q) * d + j] = p->data[(s * d + j) * l + q];
  gr_status s = gr_corda_cov_add(&st->cov, rows, n * l, what);
  gr_free(rows);
  gr_ctx_reset(cc->scratch);
  return s;
}

static gr_status corda_hook(void *ud, gr_module *mod, const gr_tensor *x) {
  corda_collect *cc = ud;
  char p[GR_NAME_MAX];
  gr_module_path(mod, p, sizeof p);
  for (int i = 0; i < cc->n; i++) {
    corda_site *st = &cc->site[i];
    if (st->base != mod) continue;
    if (st->unfold) return add_conv_input(cc, st, x, p);
    if (x->ndim < 1 || x->shape[x->ndim - 1] != st->cov.dim)
      return gr_error(GR_ESHAPE, "CorDA: input of '%s' has %lld features, expected %lld", p,
                      (long long)(x->ndim ? x->shape[x->ndim - 1] : 0), (long long)st->cov.dim);
    return gr_corda_cov_add(&st->cov, x->data, x->numel / st->cov.dim, p);
  }
  return gr_error(GR_ESTATE, "CorDA: hook called for unknown module '%s'", p);
}

static gr_status site_prepare(corda_collect *cc, corda_site *st) {
  gr_tensor *w = gr_module_param_get(st->base, "weight");
  if (!w) return gr_error(GR_EUNSUPPORTED, "CorDA: base layer '%s' has no weight", st->base->name);
  gr_status s = gr_corda_cov_init(&st->cov, w->numel / w->shape[0]);
  if (s || !st->base->kind || strcmp(st->base->kind, "Conv2d")) return s;
  st->conv = *gr_nn_conv2d_opts(st->base);
  int64_t ch = w->shape[1], kh = w->shape[2], kw = w->shape[3], d = ch * kh * kw;
  if (st->conv.groups > 1) return gr_error(GR_EUNSUPPORTED, "CorDA: grouped Conv2d '%s'", st->base->name);
  st->unfold = gr_tensor_new_in(cc->arena, 4, GR_SHAPE(d, ch, kh, kw), false);
  if (!st->unfold) return gr_last_status();
  for (int64_t j = 0; j < d; j++) st->unfold->data[j * d + j] = 1.0f; /* row j = (c, i, k) picks x[c, i, k] */
  return GR_OK;
}

static gr_status find_lora(gr_module *mod, corda_collect *cc) {
  if (gr_lora_is(mod)) {
    if (cc->n == cc->cap) {
      int nc = cc->cap ? 2 * cc->cap : 16;
      corda_site *ns = gr_calloc((size_t)nc, sizeof *ns);
      if (!ns) return gr_error(GR_ENOMEM, "CorDA: out of memory");
      if (cc->n) memcpy(ns, cc->site, (size_t)cc->n * sizeof *ns);
      gr_free(cc->site);
      cc->site = ns, cc->cap = nc;
    }
    corda_site *st = &cc->site[cc->n++];
    st->lora = mod;
    st->base = gr_module_find(mod, "base_layer");
    return st->base ? site_prepare(cc, st) : gr_error(GR_EARG, "CorDA: LoRA module without base_layer");
  }
  for (int i = 0; i < mod->n_children; i++) {
    gr_status s = find_lora(mod->children[i], cc);
    if (s) return s;
  }
  return GR_OK;
}

/* One forward call per calibration sample of a dataset (gr_corda_apply). */
typedef struct dataset_calib {
  const gr_dataset *data;
  int64_t n_samples;
} dataset_calib;

static gr_status run_dataset_calibration(void *ud, gr_model *m, gr_ctx *c) {
  const dataset_calib *dc = ud;
  gr_status s = GR_OK;
  int64_t n = dc->n_samples < dc->data->n ? dc->n_samples : dc->data->n;
  for (int64_t k = 0; k < n && !s; k++) {
    gr_tensor *x = NULL;
    const int32_t *y = NULL;
    s = gr_dataset_batch(dc->data, c, k * dc->data->n / n, 1, &x, &y);
    if (!s && !gr_model_forward(m, c, x)) s = gr_last_status() ? gr_last_status() : GR_ENUMERIC;
    gr_ctx_reset(c);
  }
  return s;
}

/* The calibration forwards in inference mode (batch norm on its running
 * statistics, dropout off), no tape. */
static gr_status run_calibration(gr_model *m, gr_corda_calib_fn run, void *ud) {
  gr_ctx *c = gr_ctx_new(1 << 20, 0);
  if (!c) return gr_last_status();
  gr_ctx_set_grad(c, false);
  bool prev = m->inference;
  m->inference = true;
  gr_status s = run(ud, m, c);
  m->inference = prev;
  gr_ctx_free(c);
  return s;
}

gr_status gr_corda_apply_with(gr_model *m, gr_corda_calib_fn run, void *ud, gr_corda_mode mode, bool balanced,
                              int *n_done) {
  if (n_done) *n_done = 0;
  if (!m || !m->root || !run) return gr_error(GR_EARG, "CorDA: NULL model or calibration function");
  corda_collect cc = {0};
  cc.scratch = gr_ctx_new(1 << 20, 0);
  cc.arena = gr_arena_new(1 << 16);
  gr_status s = cc.scratch && cc.arena ? find_lora(m->root, &cc) : gr_error(GR_ENOMEM, "CorDA: out of memory");
  if (!s && cc.n == 0) s = gr_error(GR_ENOTFOUND, "CorDA: the model has no LoRA module to initialize");
  if (cc.scratch) gr_ctx_set_grad(cc.scratch, false);
  int hooked = 0;
  for (; !s && hooked < cc.n; hooked++) s = gr_module_hook_input(cc.site[hooked].base, corda_hook, &cc);
  if (!s) s = run_calibration(m, run, ud);
  for (int i = 0; i < hooked; i++) gr_module_unhook_input(cc.site[i].base);
  for (int i = 0; i < cc.n && !s; i++) {
    s = gr_corda_cov_finish(&cc.site[i].cov);
    if (!s) s = gr_corda_init(cc.site[i].lora, &cc.site[i].cov, mode, balanced);
  }
  if (!s && n_done) *n_done = cc.n;
  for (int i = 0; i < cc.n; i++) gr_corda_cov_free(&cc.site[i].cov);
  gr_free(cc.site);
  gr_ctx_free(cc.scratch);
  gr_arena_free(cc.arena);
  return s;
}

gr_status gr_corda_apply(gr_model *m, const gr_dataset *calib, int64_t n_samples, gr_corda_mode mode, bool balanced,
                         int *n_done) {
  if (n_done) *n_done = 0;
  if (!m || !m->root || !calib || calib->n < 1 || n_samples < 1)
    return gr_error(GR_EARG, "CorDA: NULL model, empty calibration data or n_samples < 1");
  dataset_calib dc = {calib, n_samples};
  return gr_corda_apply_with(m, run_dataset_calibration, &dc, mode, balanced, n_done);
}

/* ---- transfer-registry rows: LoRA targets and options, CorDA init ---------- */
enum { CORDA_SAMPLES = 256 }; /* the paper's calibration size; option "samples=N" */

/* Options "samples=N" (calibration images, default 256) and "balanced=0|1"
 * (default 1). The rows use balanced factors: with PEFT's split (C^-1 entirely in A) the
 * factors of a LeNet layer differed ~1000x in scale and SGD at the demo's
 * lr 0.01 diverged within 25 steps (loss 5e17); balancing keeps B A, the
 * residual and the selected components, so the model at init is the same. */

/* "freeze_a=1" (an ablation, not the paper's method; taken by the lora row's
 * setup): lora_A stays at its CorDA init and only B (and the head) train, so
 * every adapter update acts through the selected components' input directions. */
static gr_status corda_setup(gr_transfer_run *run, gr_corda_mode mode) {
  const gr_dataset *calib = mode == GR_CORDA_KPM ? run->source_data : run->target_data;
  if (!calib)
    return gr_error(GR_EARG, "corda-%s needs calibration data (the %s task's training set)",
                    mode == GR_CORDA_KPM ? "kp" : "ip", mode == GR_CORDA_KPM ? "source" : "target");
  char rest[512], tmp[512];
  double samples = CORDA_SAMPLES, balanced = 1;
  gr_status s = gr_transfer_take_option(run->options, "samples", tmp, sizeof tmp, &samples, NULL);
  if (!s) s = gr_transfer_take_option(tmp, "balanced", rest, sizeof rest, &balanced, NULL);
  if (!s && (!(samples >= 1 && samples <= 1e7 && samples == floor(samples)) || (balanced != 0 && balanced != 1)))
    s = gr_error(GR_EARG, "corda-%s: samples=%g must be a whole number >= 1, balanced=%g 0 or 1",
                 mode == GR_CORDA_KPM ? "kp" : "ip", samples, balanced);
  if (s) return s;
  const char *given = run->options;
  run->options = rest[0] ? rest : NULL;
  s = gr_method_lora_setup(run);
  run->options = given;
  if (!s) s = gr_corda_apply(run->model, calib, (int64_t)samples, mode, balanced == 1, NULL);
  return s;
}

gr_status gr_method_corda_kp_setup(gr_transfer_run *run) { return corda_setup(run, GR_CORDA_KPM); }
gr_status gr_method_corda_ip_setup(gr_transfer_run *run) { return corda_setup(run, GR_CORDA_IPM); }
