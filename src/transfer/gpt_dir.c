/* transfer/gpt_dir.c — GPT model directories (graft/lm.h): the weights
 * through gr_model_save_weights / gr_model_load_weights (strict), and a
 * config.json with Hugging Face GPT-2 keys for the shape plus graft's
 * tokenizer, data spec and objective. Everything read is validated. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "graft/fileio.h"
#include "graft/lm.h"
#include "graft/modeldir.h"
#include "io/json_util.h"

#define CONFIG_MAX_BYTES (16 << 20)

static const char *join(char *buf, size_t n, const char *dir, const char *name) {
  snprintf(buf, n, "%s/%s", dir, name);
  return buf;
}

static gr_status config_json(const gr_gpt *g, const gr_tokenizer *t, const gr_gpt_meta *meta, char **out) {
  char *tok = NULL;
  gr_status st = gr_tokenizer_to_json(t, &tok);
  if (st) return st;
  cJSON *o = cJSON_CreateObject(), *arch = cJSON_AddArrayToObject(o, "architectures");
  cJSON *tj = cJSON_Parse(tok);
  gr_free(tok);
  bool ok = o && arch && tj && cJSON_AddItemToArray(arch, cJSON_CreateString("GPT2LMHeadModel"));
  ok = ok && cJSON_AddStringToObject(o, "model_type", "gpt2") && cJSON_AddStringToObject(o, "architecture", "gpt") &&
       cJSON_AddNumberToObject(o, "vocab_size", (double)g->cfg.vocab) &&
       cJSON_AddNumberToObject(o, "n_positions", (double)g->cfg.block) &&
       cJSON_AddNumberToObject(o, "n_layer", (double)g->cfg.n_layer) &&
       cJSON_AddNumberToObject(o, "n_head", (double)g->cfg.n_head) &&
       cJSON_AddNumberToObject(o, "n_embd", (double)g->cfg.n_embd) &&
       cJSON_AddNumberToObject(o, "layer_norm_epsilon", 1e-5) &&
       cJSON_AddStringToObject(o, "activation_function", "gelu_new") &&
       cJSON_AddBoolToObject(o, "tie_word_embeddings", 1) &&
       cJSON_AddStringToObject(o, "data", meta ? meta->data : "") &&
       cJSON_AddStringToObject(o, "objective", meta ? meta->objective : "") &&
       cJSON_AddStringToObject(o, "framework", "graft");
  if (ok) ok = cJSON_AddItemToObject(o, "tokenizer", tj), tj = NULL;
  char *txt = ok ? cJSON_Print(o) : NULL;
  cJSON_Delete(o);
  cJSON_Delete(tj);
  if (!txt) return gr_error(GR_ENOMEM, "config.json: out of memory");
  size_t n = strlen(txt);
  *out = gr_malloc(n + 2);
  if (*out) memcpy(*out, txt, n), (*out)[n] = '\n', (*out)[n + 1] = 0;
  cJSON_free(txt);
  return *out ? GR_OK : gr_error(GR_ENOMEM, "config.json: out of memory");
}

gr_status gr_gpt_save_dir(const gr_gpt *g, const gr_tokenizer *t, const gr_gpt_meta *meta, const char *dir) {
  if (!g || !t || !dir) return gr_error(GR_EARG, "save gpt: NULL argument");
  if (t->vocab != g->cfg.vocab)
    return gr_error(GR_EARG, "save gpt: tokenizer vocabulary %d differs from the model's %lld", t->vocab, (long long)g->cfg.vocab);
  char path[1100], *cfg = NULL;
  gr_status st = gr_model_save_weights(g->model, join(path, sizeof path, dir, "model.safetensors"));
  if (!st) st = config_json(g, t, meta, &cfg);
  if (!st) st = gr_write_file_atomic(join(path, sizeof path, dir, "config.json"), cfg, strlen(cfg));
  gr_free(cfg);
  return st;
}

static gr_status read_text_file(const char *path, char **out, size_t *n) {
  FILE *fp = fopen(path, "rb");
  if (!fp) return gr_error(GR_ENOTFOUND, "%s: cannot open (not a GPT model directory?)", path);
  char *buf = gr_malloc(CONFIG_MAX_BYTES + 1);
  size_t got = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, fp) : 0;
  fclose(fp);
  if (!buf) return gr_error(GR_ENOMEM, "%s: out of memory", path);
  if (got > CONFIG_MAX_BYTES) return gr_free(buf), gr_error(GR_EFORMAT, "%s: larger than %d bytes", path, CONFIG_MAX_BYTES);
  buf[got] = 0;
  *out = buf, *n = got;
  return GR_OK;
}

static int64_t shape_field(const cJSON *o, const char *key, int64_t hi, const char *path, gr_status *st) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (*st) return 0;
  if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble || v->valuedouble < 1 || v->valuedouble > hi) {
    *st = gr_error(GR_EFORMAT, "%s: \"%s\" must be an integer in 1..%lld", path, key, (long long)hi);
    return 0;
  }
  return (int64_t)v->valuedouble;
}

static void meta_string(const cJSON *o, const char *key, char *dst, size_t n) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  snprintf(dst, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static gr_status parse_config(const cJSON *o, const char *path, gr_gpt_config *cfg, gr_tokenizer **t, gr_gpt_meta *meta) {
  const cJSON *arch = cJSON_GetObjectItemCaseSensitive(o, "architecture");
  if (!cJSON_IsString(arch) || strcmp(arch->valuestring, "gpt"))
    return gr_error(GR_EFORMAT, "%s: \"architecture\" is not \"gpt\" (not a GPT model directory)", path);
  gr_status st = GR_OK;
  cfg->vocab = shape_field(o, "vocab_size", 1 << 24, path, &st);
  cfg->block = shape_field(o, "n_positions", 1 << 16, path, &st);
  cfg->n_layer = shape_field(o, "n_layer", 256, path, &st);
  cfg->n_head = shape_field(o, "n_head", 1 << 16, path, &st);
  cfg->n_embd = shape_field(o, "n_embd", 1 << 16, path, &st);
  if (st) return st;
  const cJSON *tj = cJSON_GetObjectItemCaseSensitive(o, "tokenizer");
  char *tok = cJSON_IsObject(tj) ? cJSON_PrintUnformatted(tj) : NULL;
  if (!tok) return gr_error(GR_EFORMAT, "%s: \"tokenizer\" must be an object", path);
  st = gr_tokenizer_from_json(tok, strlen(tok), t);
  cJSON_free(tok);
  if (st) return gr_error(st, "%s: %s", path, "tokenizer is invalid (see the tokenizer JSON format in graft/text.h)");
  if ((*t)->vocab != cfg->vocab) {
    st = gr_error(GR_EFORMAT, "%s: the tokenizer has %d ids but vocab_size is %lld", path, (*t)->vocab, (long long)cfg->vocab);
    gr_tokenizer_free(*t), *t = NULL;
    return st;
  }
  if (meta) meta_string(o, "data", meta->data, sizeof meta->data), meta_string(o, "objective", meta->objective, sizeof meta->objective);
  return GR_OK;
}

gr_status gr_gpt_load_dir(const char *dir, gr_gpt **g, gr_tokenizer **t, gr_gpt_meta *meta) {
  if (!dir || !g || !t) return gr_error(GR_EARG, "load gpt: NULL argument");
  *g = NULL, *t = NULL;
  char path[1100], *txt = NULL;
  size_t n = 0;
  gr_status st = read_text_file(join(path, sizeof path, dir, "config.json"), &txt, &n);
  cJSON *o = NULL;
  if (!st) st = io_json_parse(txt, n, path, &o);
  gr_free(txt);
  gr_gpt_config cfg = {0};
  if (!st && !cJSON_IsObject(o)) st = gr_error(GR_EFORMAT, "%s: not a JSON object", path);
  if (!st) st = parse_config(o, path, &cfg, t, meta);
  cJSON_Delete(o);
  if (!st) st = gr_gpt_new(&cfg, 0, g);
  if (!st) st = gr_model_load_weights((*g)->model, join(path, sizeof path, dir, "model.safetensors"), true);
  if (st) {
    gr_gpt_free(*g), *g = NULL;
    gr_tokenizer_free(*t), *t = NULL;
  }
  return st;
}
