/* cli/graft.c — the `graft` command: dispatch to one verb per file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "graft/dist.h"

typedef int (*verb_fn)(int argc, char **argv);

#define VERB(name) int cmd_##name(int argc, char **argv) __attribute__((weak));
VERB(demo) VERB(train) VERB(finetune) VERB(eval) VERB(study) VERB(inspect) VERB(convert)
VERB(merge) VERB(rebase) VERB(taskvec) VERB(peft) VERB(generate) VERB(import)
#undef VERB

static const struct {
  const char *name;
  const char *about;
} verbs[] = {
    {"demo", "pretrain on Fashion-MNIST 0-4, transfer to 5-9, report"},
    {"train", "train a model from scratch"},
    {"finetune", "transfer a trained model to new data (full, frozen, PEFT)"},
    {"eval", "evaluate a model directory on data"},
    {"study", "run a grid of methods x label budgets x seeds"},
    {"inspect", "list tensors, dtypes, shapes and metadata of a file or dir"},
    {"convert", "convert dtypes and rename tensors"},
    {"merge", "merge models from a mergekit YAML config"},
    {"rebase", "move a fine-tune onto a new base version"},
    {"taskvec", "extract, apply and scale task vectors"},
    {"peft", "merge or unmerge PEFT adapters"},
    {"generate", "generate text from a language model"},
    {"import", "import an ONNX or TF.js model"},
};

static verb_fn lookup(const char *name) {
  if (!strcmp(name, "demo")) return cmd_demo;
  if (!strcmp(name, "train")) return cmd_train;
  if (!strcmp(name, "finetune")) return cmd_finetune;
  if (!strcmp(name, "eval")) return cmd_eval;
  if (!strcmp(name, "study")) return cmd_study;
  if (!strcmp(name, "inspect")) return cmd_inspect;
  if (!strcmp(name, "convert")) return cmd_convert;
  if (!strcmp(name, "merge")) return cmd_merge;
  if (!strcmp(name, "rebase")) return cmd_rebase;
  if (!strcmp(name, "taskvec")) return cmd_taskvec;
  if (!strcmp(name, "peft")) return cmd_peft;
  if (!strcmp(name, "generate")) return cmd_generate;
  if (!strcmp(name, "import")) return cmd_import;
  return NULL;
}

static void usage(FILE *fp) {
  fprintf(fp, "usage: graft VERB [options]   (graft VERB --help for details)\n\nverbs:\n");
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
    fprintf(fp, "  %-9s %s%s\n", verbs[i].name, verbs[i].about,
            lookup(verbs[i].name) ? "" : "  [not built yet]");
}

/* How long libgomp's idle threads spin before they sleep. Its default
 * (300000 spins, or spinning for ever with OMP_WAIT_POLICY=ACTIVE) steals
 * the core a BLAS call or another process needs: on a loaded 2-core machine
 * that made a LeNet epoch 13x slower. Sleeping at once (PASSIVE) makes every
 * fork wait for a futex wake-up: at 2 threads the MLP step took 0.84-0.88 ms
 * instead of 0.58-0.60. A short spin (GOMP_SPINCOUNT 20000) was the fastest
 * of the three on the quiet machine (MLP, LeNet, ResNet-8 at 2 threads) and
 * under two competing CPU hogs (LeNet 3.6 ms vs 5.9 PASSIVE; docs/RESULTS.md,
 * "OpenMP wait"). libgomp reads it once at load time, so when the user has
 * chosen no policy, graft sets it and re-executes itself (before anything
 * else has run). */
#define GRAFT_GOMP_SPINCOUNT "20000"

/* The thread count this run asks for: --threads N (or --threads=N), else
 * gr_set_threads's default. */
static int threads_asked(int argc, char **argv) {
  int n = 0;
  for (int i = 1; i < argc && n <= 0; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) n = atoi(argv[i + 1]);
    else if (!strncmp(argv[i], "--threads=", 10)) n = atoi(argv[i] + 10);
  }
  return n > 0 ? n : gr_threads_default();
}

/* Also, at more than one thread, each OpenMP thread stays on its own CPU
 * (OMP_PROC_BIND=true): unbound, a worker woken from its sleep was at times
 * placed on the CPU of the thread that woke it, and the two then took
 * turns there (MLP batch-64 inference at 2 threads 2.3-2.6 ms instead of
 * 0.21 in about half of the runs; with another process busy on one CPU,
 * MLP training 3.4-5.2 ms per step instead of 1.3, LeNet 12-16 ms instead
 * of 4.6; docs/RESULTS.md, "Session 8"). Not at one thread: libgomp binds
 * the initial thread too, to the first CPU, where every one-thread graft
 * (parallel tests, say) would then meet; nor in an MPI rank, whose
 * launcher places the ranks (unplaced ranks would all start on one CPU). */
static void prefer_omp_settings(int argc, char **argv) {
  if (getenv("GRAFT_NO_REEXEC")) return;
  bool spin = !getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT");
  bool bind = threads_asked(argc, argv) > 1 && !getenv("OMP_PROC_BIND") &&
              !getenv("OMP_PLACES") && !getenv("GOMP_CPU_AFFINITY") && !getenv("OMPI_COMM_WORLD_SIZE") &&
              !getenv("PMI_SIZE");
  if (!spin && !bind) return;
  if (spin) setenv("GOMP_SPINCOUNT", GRAFT_GOMP_SPINCOUNT, 1);
  if (bind) setenv("OMP_PROC_BIND", "true", 1);
  setenv("GRAFT_NO_REEXEC", "1", 1);
  execv("/proc/self/exe", argv); /* returns only on failure: carry on as is */
}

int main(int argc, char **argv) {
  prefer_omp_settings(argc, argv);
  if (argc < 2) {
    usage(stderr);
    return CLI_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return CLI_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("graft 0.1.0\n");
    return CLI_OK;
  }
  bool known = false;
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) known |= !strcmp(verbs[i].name, argv[1]);
  if (!known) {
    fprintf(stderr, "graft: unknown verb '%s'\n", argv[1]);
    usage(stderr);
    return CLI_USAGE;
  }
  verb_fn fn = lookup(argv[1]);
  if (!fn) {
    fprintf(stderr, "graft: error: '%s' is not implemented in this build yet\n", argv[1]);
    return CLI_FAIL;
  }
  if (gr_dist_init(&argc, &argv) != GR_OK) {
    fprintf(stderr, "graft: error: %s\n", gr_last_error());
    return CLI_FAIL;
  }
  int rc = fn(argc - 1, argv + 1);
  /* A failed rank ends the whole job (the others may be waiting in a collective). */
  if (rc != CLI_OK && gr_dist_size() > 1) gr_dist_abort(rc);
  gr_dist_finalize();
  return rc;
}
