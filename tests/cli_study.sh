#!/bin/bash
# graft study CONFIG --out DIR: a small grid from a JSON config reuses the
# demo's loop; bad configs are rejected with the key named.
set -u
G=$1
T=${GRAFT_TMP:-/tmp}/cli_study.$$
PY=${GRAFT_PYTHON:-python3}
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
cat > "$T/c.json" <<JSON
{"arch": "mlp", "methods": ["scratch", "finetune-discriminative"], "budgets": [0.01, 1], "seeds": 2, "quick": true}
JSON
"$G" study "$T/c.json" --out "$T/s" --quiet >"$T/o" 2>"$T/e"
check "study exits 0" '[ $? -eq 0 ]'
check "results: pretrain + 2 methods x 2 budgets x 2 seeds" '"$PY" - "$T/s/results.jsonl" <<PYEOF
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
t = [r for r in runs if r["phase"] == "transfer"]
assert len(t) == 8 and {r["seed"] for r in t} == {1, 2}, len(t)
assert {r["method"] for r in t} == {"scratch", "finetune-discriminative"}
PYEOF'
check "report.html written" '[ -s "$T/s/report.html" ]'
echo '{"methods": ["scratch"], "epochs": 3}' > "$T/bad.json"
"$G" study "$T/bad.json" --out "$T/b" >"$T/o" 2>"$T/e"
check "unknown key exits 1 naming it" '[ $? -eq 1 ] && grep -q epochs "$T/e"'
echo '{"methods": ["no-such-method"]}' > "$T/bad.json"
"$G" study "$T/bad.json" --out "$T/b" >"$T/o" 2>"$T/e"
check "unknown method exits 1" '[ $? -eq 1 ] && grep -q no-such-method "$T/e"'
echo '{"budgets": [0.5' > "$T/bad.json"
"$G" study "$T/bad.json" --out "$T/b" >"$T/o" 2>"$T/e"; check "malformed JSON exits 1" '[ $? -eq 1 ]'
"$G" study --out "$T/b" >"$T/o" 2>"$T/e"; check "missing CONFIG exits 2" '[ $? -eq 2 ]'
"$G" study "$T/c.json" >"$T/o" 2>"$T/e"; check "missing --out exits 2" '[ $? -eq 2 ]'
"$G" study "$T/c.json" --out "$T/s" --quiet >"$T/o" 2>"$T/e"; check "existing out dir exits 1" '[ $? -eq 1 ]'
rm -rf "$T"
exit $fail
