#!/bin/bash
# graft study with per-method options and a held-out split: "name:key=value"
# rows run with their own lr (and adapter_lr) and are recorded under that
# name; a diverging lr is recorded (accuracy null, extra diverged) and the
# grid goes on; "holdout": N draws the label budgets from the rest of the
# target training set; bad options and holdouts exit 1 naming them, bad
# option keys before any training; "source_dir" reuses the source models
# a study wrote instead of pretraining them.
set -u
G=$1
T=${GRAFT_TMP:-/tmp}/cli_study_options.$$
PY=${GRAFT_PYTHON:-python3}
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
cat > "$T/c.json" <<JSON
{"arch": "mlp", "methods": ["finetune", "finetune:lr=0.01", "finetune:lr=0.05", "finetune:lr=1e30",
 "lora:adapter_lr=4", "lora", "lora:r=2:alpha=4:adapter_lr=2:lr=0.01:clip=0:warmup=0:cosine=0:adamw=0:train_bn=0:b_lr=1:bn_stats=train:targets=layers.0;layers.2"], "budgets": [0.1], "seeds": 1, "quick": true, "min_steps": 5, "lr": 0.01}
JSON
"$G" study "$T/c.json" --out "$T/s" --quiet >"$T/o" 2>"$T/e"
check "study exits 0" '[ $? -eq 0 ] || { cat "$T/e"; false; }'
cat > "$T/h.json" <<JSON
{"arch": "mlp", "methods": ["finetune"], "budgets": [0.1], "seeds": 1, "quick": true, "min_steps": 5, "holdout": 1000}
JSON
"$G" study "$T/h.json" --out "$T/h" --quiet >"$T/o" 2>"$T/e"
check "holdout study exits 0" '[ $? -eq 0 ] || { cat "$T/e"; false; }'
check "rows by spec, own lr, divergence recorded, holdout shrinks the label pool" '"$PY" - "$T/s/results.jsonl" "$T/h/results.jsonl" <<PYEOF
import json, sys
def load(p):
    return {r["method"]: r for r in (json.loads(l) for l in open(p) if l.strip()) if r["phase"] == "transfer"}
t, h = load(sys.argv[1]), load(sys.argv[2])
long = "lora:r=2:alpha=4:adapter_lr=2:lr=0.01:clip=0:warmup=0:cosine=0:adamw=0:train_bn=0:b_lr=1:bn_stats=train:targets=layers.0;layers.2"  # 129 characters, kept whole
assert list(t) == ["finetune", "finetune:lr=0.01", "finetune:lr=0.05", "finetune:lr=1e30", "lora:adapter_lr=4", "lora", long], list(t)
assert t[long]["trainable_params"] < t["lora"]["trainable_params"], (t[long]["trainable_params"], t["lora"]["trainable_params"])
# the study lr is 0.01: lr=0.01 is the same run, lr=0.05 another one
assert t["finetune"]["loss"] == t["finetune:lr=0.01"]["loss"], (t["finetune"]["loss"], t["finetune:lr=0.01"]["loss"])
assert t["finetune"]["loss"] != t["finetune:lr=0.05"]["loss"]
assert t["lora"]["loss"] != t["lora:adapter_lr=4"]["loss"]
assert t["lora"]["trainable_params"] == t["lora:adapter_lr=4"]["trainable_params"]
d = t["finetune:lr=1e30"]
assert d["accuracy"] is None and d["extra"]["diverged"] == 1, d
assert "diverged" not in t["finetune"]["extra"]
# 6000 quick target images: 10% is 600 labels; with 1000 held out, 500
assert t["finetune"]["n_labels"] == 600 and h["finetune"]["n_labels"] == 500, (t["finetune"]["n_labels"], h["finetune"]["n_labels"])
PYEOF'
# bad_study NAME JSON PATTERN: a study config that must exit 1 with PATTERN in its error
bad_study() {
  echo "$2" > "$T/bad.json"
  "$G" study "$T/bad.json" --out "$T/bad.out" --quiet >"$T/o" 2>"$T/e"
  bad_rc=$? bad_pattern=$3 # globals: check evaluates its condition later
  check "$1" '[ $bad_rc -eq 1 ] && grep -q -- "$bad_pattern" "$T/e"'
  rm -rf "$T/bad.out"
}
bad_study "bad lr exits 1 naming it" '{"arch": "mlp", "methods": ["lora:lr=abc"], "budgets": [0.1], "quick": true, "min_steps": 2}' "lr=abc"
bad_study "unknown method option exits 1 naming it" '{"arch": "mlp", "methods": ["lora:rank=2"], "budgets": [0.1], "quick": true, "min_steps": 2}' "rank=2"
# a bad option key is caught before any pretraining: nothing is written
echo '{"arch": "mlp", "methods": ["finetune", "lora:rank=2"], "budgets": [0.1], "quick": true}' > "$T/early.json"
"$G" study "$T/early.json" --out "$T/early" --quiet >"$T/o" 2>"$T/e"
early_rc=$?
check "study: bad option key fails before training" '[ $early_rc -eq 1 ] && [ ! -e "$T/early" ] && grep -q "rank=2" "$T/e"'
"$G" demo --quick --methods finetune,adapter-par:lr=0.05:bottleneck=8 --out "$T/early_demo" --quiet >"$T/o" 2>"$T/e"
early_rc=$?
check "demo: bad option key fails before training" '[ $early_rc -eq 1 ] && [ ! -e "$T/early_demo" ] && grep -q "bottleneck=8" "$T/e"'
"$G" study --help >"$T/help" 2>&1
check "study --help lists the methods with their option keys" 'grep -q "^  corda-kp .*\[samples,balanced," "$T/help"'
bad_study "a method spec too long to record exits 1" '{"arch": "mlp", "methods": ["lora:targets=layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2;layers.0;layers.2"], "budgets": [0.1], "quick": true, "min_steps": 2}' "longer than 255"
# a long "methods" list (20 specs, ~2.4k characters) is read whole: its last spec's bad key is what fails
long_methods=$(for i in $(seq 19); do printf '"lora:r=2:alpha=4:lr=0.0%02d:adapter_lr=2:b_lr=4:targets=layers.0;layers.2:clip=0", ' "$i"; done)
bad_study "a 2.4k-character methods list is read to its last spec" "{\"arch\": \"mlp\", \"methods\": [$long_methods \"lora:rank=2\"], \"budgets\": [0.1], \"quick\": true}" "rank=2"
many_methods=$(for i in $(seq 33); do printf '"finetune:lr=0.0%02d"' "$i"; [ "$i" -lt 33 ] && printf ', '; done)
bad_study "33 methods exit 1 naming the limit" "{\"arch\": \"mlp\", \"methods\": [$many_methods], \"budgets\": [0.1], \"quick\": true}" "at most 32 methods"
bad_study "holdout >= the training set exits 1 naming it" '{"arch": "mlp", "methods": ["finetune"], "budgets": [0.1], "quick": true, "min_steps": 2, "holdout": 6000}' "holdout 6000"
bad_study "negative holdout exits 1" '{"methods": ["finetune"], "holdout": -1}' "holdout"
# "source_dir": the source model of each seed is loaded from DIR/source-seed<N>
# (written by the first study) instead of pretrained: the same runs, no pretrain row
cat > "$T/src.json" <<JSON
{"arch": "mlp", "methods": ["finetune", "lora:adapter_lr=4"], "budgets": [0.1], "seeds": 1, "quick": true, "min_steps": 5, "lr": 0.01, "source_dir": "$T/s"}
JSON
"$G" study "$T/src.json" --out "$T/src" --quiet >"$T/o" 2>"$T/e"
check "source_dir study exits 0" '[ $? -eq 0 ] || { cat "$T/e"; false; }'
check "source_dir: the runs of the pretraining study, no pretrain row" '"$PY" - "$T/s/results.jsonl" "$T/src/results.jsonl" <<PYEOF
import json, sys
a, b = ([json.loads(l) for l in open(p) if l.strip()] for p in sys.argv[1:3])
assert [r for r in b if r["phase"] == "pretrain"] == [] and len([r for r in a if r["phase"] == "pretrain"]) == 1
ta = {r["method"]: r for r in a if r["phase"] == "transfer"}
tb = {r["method"]: r for r in b if r["phase"] == "transfer"}
assert list(tb) == ["finetune", "lora:adapter_lr=4"], list(tb)
for m in tb:
    assert tb[m]["loss"] == ta[m]["loss"] and tb[m]["accuracy"] == ta[m]["accuracy"], (m, tb[m]["loss"], ta[m]["loss"])
    assert tb[m]["extra"]["source_accuracy"] == ta[m]["extra"]["source_accuracy"], m
PYEOF'
bad_study "source_dir without the seed's model exits 1 naming it" '{"arch": "mlp", "methods": ["finetune"], "budgets": [0.1], "quick": true, "min_steps": 2, "seed": 7, "source_dir": "'"$T/s"'"}' "source-seed7"
bad_study "source_dir of another arch exits 1 naming both" '{"arch": "lenet", "methods": ["finetune"], "budgets": [0.1], "quick": true, "min_steps": 2, "source_dir": "'"$T/s"'"}' "mlp.*lenet"
bad_study "source_dir not a string exits 1" '{"methods": ["finetune"], "source_dir": 3}' "source_dir"
rm -rf "$T"
exit $fail
