#!/bin/bash
# The PEFT study's machinery in seconds (not its claims): a tiny grid with
# CorDA (both modes) and ScaLearn writes one row per run with the trainable
# parameter count, peak memory and the forgetting metric source_accuracy.
set -u
G=$1
T=${GRAFT_TMP:-/tmp}/cli_peft_study.$$
PY=${GRAFT_PYTHON:-python3}
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
cat > "$T/c.json" <<JSON
{"arch": "mlp", "methods": ["lora", "corda-kp", "corda-ip", "scalearn-uniform++"], "budgets": [0.01],
 "seeds": 1, "quick": true, "min_steps": 5}
JSON
"$G" study "$T/c.json" --out "$T/s" --quiet >"$T/o" 2>"$T/e"
check "study exits 0" '[ $? -eq 0 ] || { cat "$T/e"; false; }'
check "one row per method with params, memory and source_accuracy" '"$PY" - "$T/s/results.jsonl" <<PYEOF
import json, math, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
t = {r["method"]: r for r in runs if r["phase"] == "transfer"}
assert set(t) == {"lora", "corda-kp", "corda-ip", "scalearn-uniform++"}, set(t)
for m, r in t.items():
    assert 0 < r["trainable_params"] < r["total_params"], (m, r["trainable_params"])
    assert r["peak_rss_bytes"] > 0, m
    sa = r["extra"]["source_accuracy"]
    assert 0 <= sa <= 1 and not math.isnan(sa), (m, sa)
assert t["lora"]["trainable_params"] == t["corda-kp"]["trainable_params"] == t["corda-ip"]["trainable_params"]
# ScaLearnUniform++: 4 shared scalars + the new head (128*5+5)
assert t["scalearn-uniform++"]["trainable_params"] == 4 + 645, t["scalearn-uniform++"]["trainable_params"]
PYEOF'
check "the table names the methods" 'grep -q corda-kp "$T/o" && grep -q scalearn-uniform++ "$T/o"'
rm -rf "$T"
exit $fail
