/* cli/lm_runs.h — one language-model training run as the CLI does it,
 * shared by `graft train --model gpt:...` and `graft study text`: load the
 * text data, build or load the tokenizer and model, train with progress,
 * write metrics.jsonl and the GPT model directory. */
#ifndef GRAFT_CLI_LM_RUNS_H
#define GRAFT_CLI_LM_RUNS_H
#include "cli/cli.h"
#include "graft/lm.h"

typedef struct lm_run_opts {
  const char *model;      /* "gpt[:layers=L,heads=H,embd=C,block=T]"; NULL with from */
  const char *from;       /* GPT model directory to start from (its tokenizer too), or NULL */
  const char *data;       /* text spec of the training data */
  const char *val_data;   /* NULL: data with split=val */
  const char *tokenizer;  /* byte | char | bpe:N (ignored with from) */
  const char *out;        /* model directory to write, or NULL */
  gr_lm_train_cfg tc;
  gr_optim_cfg oc;
  uint64_t seed;          /* model init */
  bool quiet;
  const char *label;      /* progress label */
  /* optional: changes the model after it is built or loaded and before it
   * trains (a PEFT method: graft study gpt-peft); GR_OK or an error */
  gr_status (*adapt)(gr_gpt *g, void *ud);
  void *adapt_ud;
  bool no_model_dir;      /* with out: write metrics.jsonl only (an adapted model is no plain GPT directory) */
} lm_run_opts;

typedef struct lm_run {
  gr_gpt *g;
  gr_tokenizer *t;
  gr_token_stream train, val;
  double *unigram;        /* t->vocab log probabilities of the training stream */
  gr_lm_train_result res;
  double seconds;
} lm_run;

/* Parses a gpt model spec into cfg (vocab left 0). Prints; CLI_OK or CLI_USAGE. */
int lm_parse_model(const char *spec, gr_gpt_config *cfg);
/* Runs o; on success r holds the trained model (caller frees with
 * lm_run_free). Prints errors; returns CLI_OK or CLI_FAIL. */
int lm_run_train(const lm_run_opts *o, lm_run *r);
void lm_run_free(lm_run *r);

/* `graft train` for text models (cli/train_text.c); cmd_train hands over
 * when train_text_wanted(argv). */
bool train_text_wanted(int argc, char **argv);
int cmd_train_text(int argc, char **argv);
/* `graft study text` (cli/study_text.c); argv[0] is "text". */
int study_text_main(int argc, char **argv);
/* `graft study gpt-peft` (cli/study_gptpeft.c); argv[0] is "gpt-peft". */
int study_gptpeft_main(int argc, char **argv);

#endif
