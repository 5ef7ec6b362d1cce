#!/bin/bash
# graft study merge / rebase --quick: the pipelines run end to end and write
# every row (results.jsonl records, markdown tables); bad flags. The claims
# themselves are measured by the full runs recorded in docs/RESULTS.md.
set -u
G=$1
T=${GRAFT_TMP:-/tmp}/cli_study_domains.$$
PY=${GRAFT_PYTHON:-python3}
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }

"$G" study merge --quick --tasks invert,rot90,vflip --threads 1 --quiet --out "$T/m" >"$T/o" 2>"$T/e"
check "study merge --quick exits 0" '[ $? -eq 0 ] || { cat "$T/e"; false; }'
check "merge table on stdout and in merge_table.md" 'grep -q "atlas (init 0)" "$T/o" && grep -q "| ties " "$T/m/merge_table.md"'
check "merge results.jsonl: every method x (3 tasks + mean)" '"$PY" - "$T/m/results.jsonl" <<PYEOF
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
methods = ["fine-tunes (own task)", "base (no merge)", "task_arithmetic", "ties", "dare_ties", "dare_linear",
           "atlas (init 0)", "atlas (init: TA lambda)"]
got = {(r["method"], r["dataset"]) for r in rs if r["phase"] == "merge"}
want = {(m, d) for m in methods for d in ["invert", "rot90", "vflip", "mean of tasks"]}
assert got == want, sorted(want - got)
means = [r for r in rs if r["dataset"] == "mean of tasks"]
assert all(0 <= r["accuracy"] <= 1 and "normalized_accuracy" in r["extra"] for r in means)
assert [r for r in means if r["method"] == "atlas (init 0)"][0]["extra"]["coefficients"] == 3 * 10
PYEOF'

"$G" study rebase --quick --tasks invert,rot90 --threads 1 --quiet --out "$T/r" >"$T/o" 2>"$T/e"
check "study rebase --quick exits 0" '[ $? -eq 0 ] || { cat "$T/e"; false; }'
check "rebase table on stdout and in rebase_table.md" 'grep -q recovery "$T/o" && grep -q "| rot90" "$T/r/rebase_table.md"'
check "rebase results.jsonl: every model x task, recovery on the diff rows" '"$PY" - "$T/r/results.jsonl" <<PYEOF
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
models = ["v1", "v1 fine-tuned", "v2", "v2 + diff(v1)", "v2 fine-tuned", "control", "control + diff(v1)", "control fine-tuned"]
got = {(r["method"], r["dataset"]) for r in rs if r["phase"] == "rebase"}
assert got == {(m, t) for m in models for t in ["invert", "rot90"]}, got
assert all("recovery" in r["extra"] for r in rs if "diff" in r["method"])
assert all(0 <= r["extra"]["plain_accuracy"] <= 1 for r in rs)
PYEOF'

# bad input
"$G" study merge --quick --tasks invert --out "$T/x1" >"$T/o" 2>"$T/e"; check "merge with one task exits 2" '[ $? -eq 2 ]'
"$G" study merge --quick --tasks invert,sideways --out "$T/x2" >"$T/o" 2>"$T/e"; check "unknown shift exits 2" '[ $? -eq 2 ] && grep -q sideways "$T/e"'
"$G" study rebase --quick >"$T/o" 2>"$T/e"; check "rebase without --out exits 2" '[ $? -eq 2 ]'
"$G" study merge --quick --ties-density 0 --out "$T/x3" >"$T/o" 2>"$T/e"; check "density 0 exits 2" '[ $? -eq 2 ]'
"$G" study merge --quick --out "$T/m" >"$T/o" 2>"$T/e"; check "non-empty --out without --force exits 1" '[ $? -eq 1 ]'
for v in merge rebase; do "$G" study $v --help >"$T/o" 2>&1; check "study $v --help exits 0" '[ $? -eq 0 ] && grep -q -- --quick "$T/o"'; done
rm -rf "$T"
exit $fail
