/* graft/peft_io.h — Hugging Face PEFT adapter directories: adapter_config.json
 * + adapter_model.safetensors, for LoRA (incl. rsLoRA, DoRA, rank/alpha
 * patterns) and IA3, with key names and shapes exactly as PEFT saves them
 * (FORMATS.md §2):
 *   base_model.model.<module>.lora_A.weight   [r, in]
 *   base_model.model.<module>.lora_B.weight   [out, r]
 *   base_model.model.<module>.lora_embedding_A / _B, .lora_magnitude_vector
 *   base_model.model.<module>.ia3_l           [out, 1] or [1, in] (feed-forward)
 * The weights file carries metadata format=pt. adapter_model.bin (pickle) is
 * never loaded.
 *
 * The config keeps the whole parsed JSON: keys graft does not interpret are
 * written back unchanged, and keys PEFT itself does not define are listed in
 * unknown_keys (PEFT drops those with a warning; graft keeps and reports them). */
#ifndef GRAFT_PEFT_IO_H
#define GRAFT_PEFT_IO_H
#include <stdbool.h>
#include <stddef.h>

#include "graft/checkpoint.h"
#include "graft/safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;

/* BOTTLENECK is graft's extension (not a PEFT type): bottleneck adapters
 * in PEFT's directory layout. Its config holds peft_type "BOTTLENECK", r
 * (bottleneck width), adapter_placement ("sequential" | "parallel"),
 * adapter_scaling (s), adapter_nonlinearity ("relu"), target_modules and
 * modules_to_save; its tensors are
 *   base_model.model.<module>.adapter_down.weight  [r, in] ([r, C_in, kh, kw])
 *   base_model.model.<module>.adapter_down.bias    [r]
 *   base_model.model.<module>.adapter_up.weight    [out, r] ([C_out, r, 1, 1])
 *   base_model.model.<module>.adapter_up.bias      [out]
 * (in is the module's output width for a sequential adapter). PEFT itself
 * does not load it. */
typedef enum gr_peft_type { GR_PEFT_LORA = 0, GR_PEFT_IA3 = 1, GR_PEFT_OTHER = 2, GR_PEFT_BOTTLENECK = 3 } gr_peft_type;

typedef struct gr_peft_pattern {
  char *key;    /* module-name regex, matched as PEFT does: (.*\.)?(key)$ */
  double value; /* r or lora_alpha for matching modules */
} gr_peft_pattern;

typedef struct gr_peft_config {
  gr_peft_type type;
  char *peft_type;               /* as in the file: "LORA", "IA3", "PREFIX_TUNING", ... */
  char *task_type;               /* NULL when null/absent */
  char *base_model_name_or_path; /* NULL when null/absent */
  bool inference_mode;
  /* LoRA (defaults as PeftConfig: r 8, alpha 8, dropout 0, bias "none") */
  int r;
  double lora_alpha, lora_dropout;
  char *bias;
  bool use_rslora, use_dora, fan_in_fan_out;
  gr_peft_pattern *rank_pattern, *alpha_pattern;
  int n_rank_pattern, n_alpha_pattern;
  /* target_modules: a list of name suffixes, or one string (a full-match
   * regex, or "all-linear"); both empty when null */
  char **target_modules;
  int n_target_modules;
  char *target_modules_regex;
  /* IA3 */
  char **feedforward_modules;
  int n_feedforward_modules;
  /* modules trained and saved whole (suffix rule as target_modules) */
  char **modules_to_save;
  int n_modules_to_save;
  /* BOTTLENECK (graft's extension): placement and scaling s (default 1) */
  bool adapter_parallel;
  double adapter_scaling;
  /* the parsed document (owned) and the keys PEFT does not define */
  struct cJSON *json;
  char **unknown_keys;
  int n_unknown_keys;
} gr_peft_config;

/* Parses and validates an adapter_config.json text (PEFT's __post_init__
 * rules: peft_type present, r > 0, bias in {none, all, lora_only}, a string
 * target_modules not combined with layers_to_transform/layers_pattern,
 * layers_pattern needs layers_to_transform, init_lora_weights="loftq" needs
 * loftq_config, IA3 feedforward_modules a subset of target_modules; no
 * duplicate keys). GR_EFORMAT naming `what` and the field. */
gr_status gr_peft_config_parse(const char *text, size_t len, const char *what, gr_peft_config **out);
gr_status gr_peft_config_read(const char *path, gr_peft_config **out);
/* A config with PEFT's defaults for LoRA, IA3 or BOTTLENECK and the given
 * targets. */
gr_peft_config *gr_peft_config_new(gr_peft_type type, int r, double lora_alpha, const char *const *targets,
                                   int n_targets);
/* JSON text as PEFT writes it (indent 2, sorted keys, trailing newline),
 * struct fields applied over the kept document; gr_free() it. NULL on OOM. */
char *gr_peft_config_to_json(const gr_peft_config *c);
void gr_peft_config_free(gr_peft_config *c);

/* Effective rank / alpha of a module after rank_pattern / alpha_pattern, and
 * the LoRA scaling alpha/r (alpha/sqrt(r) with use_rslora). */
int gr_peft_module_rank(const gr_peft_config *c, const char *module);
double gr_peft_module_alpha(const gr_peft_config *c, const char *module);
double gr_peft_scaling(const gr_peft_config *c, const char *module);
/* Whether a module name is targeted: list entries match the name or a
 * ".<entry>" suffix; a string target is a full-match regex ("all-linear"
 * depends on the model and matches nothing here). */
bool gr_peft_targets(const gr_peft_config *c, const char *module);
/* Whether the module is one of modules_to_save (same suffix rule). */
bool gr_peft_is_module_to_save(const gr_peft_config *c, const char *module);
/* IA3: whether the module is one of feedforward_modules (same suffix rule),
 * i.e. its ia3_l scales the input ([1,in]) rather than the output ([out,1]). */
bool gr_peft_is_feedforward(const gr_peft_config *c, const char *module);

/* "base_model.model.<module>.<suffix>" into buf (suffix e.g. "lora_A.weight",
 * "ia3_l"); GR_EARG if it does not fit. */
gr_status gr_peft_key(char *buf, size_t n, const char *module, const char *suffix);

/* Checks tensor names and shapes against the config: every adapter key is
 * base_model.model.<module>.<known suffix>, lora_A/lora_B come in pairs with
 * A [r,in] and B [out,r] for the module's rank (4-D conv shapes accepted),
 * magnitude vectors [out] ([1,out,1,1] for a conv), ia3_l [out,1] or
 * [1,in] as the module is a feed-forward one ([1,C,1,1] for a conv),
 * bottleneck adapter_down/adapter_up pairs of rank r with biases. Tensors that are not adapter keys (modules_to_save,
 * biases) are allowed. GR_EFORMAT naming the tensor. */
gr_status gr_peft_check_entries(const gr_peft_config *c, const gr_st_entry *e, size_t n);
gr_status gr_peft_check_file(const gr_peft_config *c, const gr_st_file *f);

/* Writes dir/adapter_model.safetensors (ts as F32, metadata format=pt) and
 * dir/adapter_config.json, each atomically, after gr_peft_check_entries. */
gr_status gr_peft_dir_save(const char *dir, const gr_peft_config *c, const gr_ckpt_tensor *ts, size_t n);
/* Opens and cross-checks an adapter directory. Refuses adapter_model.bin. */
gr_status gr_peft_dir_open(const char *dir, gr_peft_config **cfg, gr_st_file **weights);

#ifdef __cplusplus
}
#endif
#endif
