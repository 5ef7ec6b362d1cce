/* cli/combine.h — elementwise combinations of whole models, streamed tensor
 * by tensor (tensor_stream.h), for `graft taskvec` and `graft rebase`:
 *   out = [ref] + Σ_k coef_k (b_k − c_k)
 * computed in double per entry and rounded once per term (gr_taskvec_axpy).
 * Tensors are matched by name against the reference model; what happens to
 * tensors on one side only, or with other shapes, is chosen per verb and
 * reported (names and counts). */
#ifndef GRAFT_CLI_COMBINE_H
#define GRAFT_CLI_COMBINE_H
#include "cli/tensor_stream.h"

#define COMBINE_MAX_TERMS 16

typedef struct combine_term {
  ts_model *b, *c; /* c may be NULL */
  double coef;
} combine_term;

typedef enum combine_unmatched {
  UNMATCHED_KEEP,  /* the term is left out: the tensor keeps the reference's value */
  UNMATCHED_DROP,  /* the tensor is left out of the output */
  UNMATCHED_ERROR, /* an error naming the tensor */
} combine_unmatched;

typedef struct combine_spec {
  const char *verb;      /* "taskvec extract", "rebase": messages */
  ts_model *ref;         /* defines the output tensors */
  bool ref_is_base;      /* include ref itself (coefficient 1) */
  combine_term terms[COMBINE_MAX_TERMS];
  int n_terms;
  combine_unmatched unmatched; /* a term lacks the tensor or has another shape */
  bool add_extra;        /* copy tensors of terms[0].b absent from ref into the output */
  const char *dtype;     /* output dtype for float tensors ("F32"...), NULL: the reference's */
  const char *out;
  bool force, json;
} combine_spec;

/* Runs the combination; prints the report; returns a CLI exit code. */
int combine_run(const combine_spec *s);
/* "keep" | "drop" | "error" → *out; false when unknown. */
bool combine_parse_unmatched(const char *s, combine_unmatched *out);
/* "f32" | "f16" | "bf16" | NULL → "F32"...; false when unknown. */
bool combine_parse_dtype(const char *s, const char **out);
#endif
