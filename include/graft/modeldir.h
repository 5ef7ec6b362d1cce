/* graft/modeldir.h — a model directory: model.safetensors (every parameter
 * and buffer under its PyTorch state_dict name, F32, metadata format=pt),
 * config.json (architecture, input shape, class count, data spec) and
 * metrics.jsonl (written by the verb that trained it). A PyTorch twin can
 * load model.safetensors with load_state_dict(strict=False) (graft does
 * not write batch-norm num_batches_tracked) and graft loads a torch-saved
 * file, ignoring num_batches_tracked. */
#ifndef GRAFT_MODELDIR_H
#define GRAFT_MODELDIR_H
#include "graft/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gr_model_config {
  char arch[32];         /* gr_arch_lookup name */
  int in_ch, h, w;       /* input image shape */
  int n_classes;
  char data[256];        /* data spec it was trained on (informational) */
} gr_model_config;

/* Writes dir/model.safetensors and dir/config.json atomically (dir must exist). */
gr_status gr_model_save_dir(const gr_model *m, const gr_model_config *cfg, const char *dir);
/* Writes every parameter and buffer of m to the safetensors file path
 * (F32, metadata format=pt), atomically. */
gr_status gr_model_save_weights(const gr_model *m, const char *path);
/* Reads dir/config.json, builds the architecture (init seeded by seed) and
 * loads dir/model.safetensors strictly (every tensor present, no unknown
 * names, shapes equal). GR_ENOTFOUND naming a missing file. A directory that
 * also holds adapter_config.json (graft finetune --peft) is wrapped as that
 * config says first (gr_peft_apply), so its adapted model loads whole. */
gr_status gr_model_load_dir(const char *dir, uint64_t seed, gr_model_config *cfg, gr_model **out);
/* Loads a safetensors file into m by name. strict: every model tensor must be
 * in the file and every file tensor in the model (num_batches_tracked aside). */
gr_status gr_model_load_weights(gr_model *m, const char *path, bool strict);
gr_status gr_model_config_read(const char *path, gr_model_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
