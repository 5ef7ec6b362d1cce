#!/bin/bash
# graft study gpt-peft on small synthetic corpora (the KJV dump format and a
# directory of C headers, so no package is needed): four runs in
# results.jsonl with honest trainable-parameter counts, a frozen base for
# the PEFT methods' forgetting baseline, the summary, and usage errors.
set -u
G=$1
T=${GRAFT_TMP:-/tmp}/cli_study_gptpeft.$$
PY=${GRAFT_PYTHON:-python3}
rm -rf "$T"; mkdir -p "$T/inc"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }

for b in Ge Exo Lev Num Deu Josh Jdgs Ruth Ezra Neh; do
  for v in $(seq 1 30); do echo "${b}1:$v And the LORD spake unto Moses, saying, Speak unto the children $((v % 5))."; done
done > "$T/kjv.txt"
for f in $(seq 1 12); do
  for i in $(seq 1 25); do echo "static inline int f${f}_$i(int x) { return x * $i + $f; } /* helper $i */"; done > "$T/inc/h$f.h"
done
S="kjv:path=$T/kjv.txt,val=20%"
C="ccode:dir=$T/inc,val=20%,test=20%"
"$G" study gpt-peft --out "$T/s" --model gpt:layers=1,heads=2,embd=16,block=128 --source "$S" \
  --source-val "$S,split=val" --target "$C" --target-val "$C,split=val" --target-test "$C,split=test" --source-steps 4 --target-steps 3 \
  --eval-every 0 --batch 2 --mam-r 4 --quiet >"$T/o" 2>"$T/e"
check "study exits 0" '[ $? -eq 0 ]'
check "summary printed and written" 'grep -q "| mam |" "$T/o" && grep -q "| prefix |" "$T/s/summary.md"'
check "results: full, lora, prefix, mam with their trainable parameters" '"$PY" - "$T/s/results.jsonl" <<PYEOF
import json, sys
rs = {r["run"]: r for r in map(json.loads, open(sys.argv[1]))}
assert list(rs) == ["full", "lora", "prefix", "mam"], rs
C, L = 16, 1
assert rs["full"]["trainable_params"] == rs["full"]["params"]
assert rs["lora"]["trainable_params"] == 4 * ((C + 3 * C) + (C + C) + (C + 4 * C) + (4 * C + C)), rs["lora"]
assert rs["prefix"]["trainable_params"] == 16 * L * 2 * C, rs["prefix"]
assert rs["mam"]["trainable_params"] == 8 * L * 2 * C + L * (4 * C + 4 + C * 4 + C), rs["mam"]
before = {r["source_val_loss_before"] for r in rs.values()}
assert len(before) == 1, before
for r in rs.values():
    assert abs(r["forgetting"] - (r["source_val_loss"] - r["source_val_loss_before"])) < 1e-9
    assert r["target_val_loss"] > 0 and r["target_test_loss"] > 0
PYEOF'
"$G" study gpt-peft --out "$T/k" --source-dir "$T/s/kjv" --source "$S" --source-val "$S,split=val" --target "$C" \
  --target-val "$C,split=val" --target-test "" --target-steps 3 --eval-every 0 --batch 2 --methods lora,corda-kp \
  --corda-samples 8 --quiet >"$T/o2" 2>"$T/e3"
check "corda-kp beside lora from the saved source: exit 0" '[ $? -eq 0 ] && grep -q "| corda-kp |" "$T/o2"'
check "summary without full or a test split: '-' in those cells, no nan" '! grep -qi "nan" "$T/k/summary.md" && grep -q "^| lora | [0-9]* | [0-9.]* | [0-9.]* | [0-9.]* | - | - |" "$T/k/summary.md"'
check "corda-kp: same trainable parameters as lora, same source baseline" '"$PY" - "$T/k/results.jsonl" <<PYEOF
import json, sys
rs = {r["run"]: r for r in map(json.loads, open(sys.argv[1]))}
assert list(rs) == ["lora", "corda-kp"], rs
assert rs["lora"]["trainable_params"] == rs["corda-kp"]["trainable_params"] > 0
assert rs["lora"]["source_val_loss_before"] == rs["corda-kp"]["source_val_loss_before"]
assert rs["lora"]["target_val_loss"] != rs["corda-kp"]["target_val_loss"]
PYEOF'
"$G" study gpt-peft --out "$T/f" --source-dir "$T/s/kjv" --source "$S" --source-val "$S,split=val" --target "$C" \
  --target-val "$C,split=val" --target-test "" --target-steps 3 --eval-every 0 --batch 2 --methods lora,corda-kp \
  --corda-samples 8 --freeze-a --quiet >/dev/null 2>"$T/e4"
check "--freeze-a: lora and corda-kp train lora_B only (4 x d_out per module)" '"$PY" - "$T/f/results.jsonl" "$T/k/results.jsonl" <<PYEOF
import json, sys
rs = {r["run"]: r for r in map(json.loads, open(sys.argv[1]))}
full = {r["run"]: r for r in map(json.loads, open(sys.argv[2]))}
C = 16
assert list(rs) == ["lora", "corda-kp"], rs
for m in rs:
    assert rs[m]["trainable_params"] == 4 * (3 * C + C + 4 * C + C), rs[m]
    assert rs[m]["source_val_loss_before"] == full[m]["source_val_loss_before"]
assert rs["lora"]["target_val_loss"] != full["lora"]["target_val_loss"]
PYEOF'
"$G" study gpt-peft --out "$T/z" --corda-samples 0 --quiet >/dev/null 2>&1
check "bad --corda-samples: usage error" '[ $? -eq 2 ]'
"$G" study gpt-peft --quiet >/dev/null 2>&1
check "no --out: usage error" '[ $? -eq 2 ]'
"$G" study gpt-peft --out "$T/x" --mam-r 0 --quiet >/dev/null 2>&1
check "bad --mam-r: usage error" '[ $? -eq 2 ]'
"$G" study gpt-peft --out "$T/y" --source-dir "$T/nonexistent" --target "$C" --target-val "$C,split=val" \
  --source-val "$S,split=val" --quiet >/dev/null 2>"$T/e2"
check "missing source model: exit 1 naming it" '[ $? -eq 1 ] && grep -q nonexistent "$T/e2"'
rm -rf "$T"
exit $fail
