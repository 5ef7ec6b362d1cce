/* fuzz_peft_config.c — libFuzzer target for the adapter_config.json parser:
 * arbitrary bytes through gr_peft_config_parse; a valid config is printed,
 * re-parsed (must succeed: graft reads what it writes) and queried. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graft/peft_io.h"
#include "graft/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gr_peft_config *c = NULL;
  if (gr_peft_config_parse((const char *)data, size, "fuzz", &c) != GR_OK) {
    if (c) abort();
    return 0;
  }
  char *out = gr_peft_config_to_json(c);
  if (!out) abort();
  gr_peft_config *c2 = NULL;
  if (gr_peft_config_parse(out, strlen(out), "fuzz-roundtrip", &c2) != GR_OK) {
    fprintf(stderr, "round trip failed: %s\n--- printed:\n%s\n", gr_last_error(), out);
    abort();
  }
  if (c2->type != c->type || c2->r != c->r || c2->n_unknown_keys != c->n_unknown_keys) abort();
  gr_peft_module_rank(c, "model.layers.0.self_attn.q_proj");
  gr_peft_scaling(c, "model.layers.0.mlp.down_proj");
  gr_peft_targets(c, "model.layers.1.self_attn.v_proj");
  gr_peft_config_free(c2);
  gr_peft_config_free(c);
  gr_free(out);
  return 0;
}
