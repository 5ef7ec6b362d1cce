#!/bin/bash
# The benchmark driver end to end (bench/run.sh, as `make bench` runs it),
# one paced run of the MLP (quick) and GPT benchmarks at one thread: both
# sides take turns block by block, the same-result checks pass, the training
# line gives the ratio over the paired blocks; the bench programs' paced
# protocol refuses a block count that does not divide the steps and stops
# (no hang) when the driver goes away. Speed itself is not judged here.
set -u
G=$1
B=$(dirname "$G")
S=${GRAFT_SRC:?}
T=${GRAFT_TMP:-/tmp}/cli_bench.$$
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then echo "skip: /usr/bin/python3 has no torch"; exit 77; fi

"$S/bench/run.sh" "$B" --quick --only mlp --threads 1 --runs 1 --host-seconds 0.1 --out "$T/r.jsonl" >"$T/r.out" 2>"$T/e" &&
  "$S/bench/run.sh" "$B" --only gpt --threads 1 --runs 1 --host-seconds 0.1 --out "$T/r.jsonl" >>"$T/r.out" 2>>"$T/e"
rc=$?
cat "$T/r.out"
check "driver exits 0" '[ $rc -eq 0 ] || { cat "$T/e"; false; }'
check "mlp training line: paired blocks, same result" \
  'grep "^mlp    train " "$T/r.out" | grep -q "median of 5 paired blocks" && grep "^mlp    train " "$T/r.out" | grep -q "same result: yes"'
check "gpt training line: paired blocks" 'grep "^gpt    train " "$T/r.out" | grep -q "median of 10 paired blocks"'
check "records keep the pairing" '/usr/bin/python3 - "$T/r.jsonl" <<PYEOF
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in recs if r["case"] == "train"]
assert {r["bench"] for r in train} == {"mlp", "gpt"}, train
for r in train:
    pb = r["paired_blocks"]
    assert pb["pairs"] == (5 if r["bench"] == "mlp" else 10) and 0 < pb["q1"] <= r["graft_over_peer"] <= pb["q3"], r
PYEOF'

M=$B/bench_mlp
"$M" --write-init "$T/mlp.f32" --batch 16 >/dev/null 2>"$T/e"
"$M" --init "$T/mlp.f32" --batch 16 --steps 20 --blocks 3 >"$T/o" 2>"$T/e" </dev/null
check "--blocks that does not divide --steps: exit 2, says so" '[ $? -eq 2 ] && grep -q "blocks 3 must divide --steps 20" "$T/e"'
timeout 60 "$M" --init "$T/mlp.f32" --batch 16 --steps 20 --blocks 4 >"$T/o" 2>"$T/e" </dev/null
rc=$?
check "paced run without a driver: exit 1 at the first section, no hang" \
  '[ $rc -eq 1 ] && grep -q "no go for infer_b1" "$T/e" && grep -q "{\"await\":\"infer_b1\"}" "$T/o"'
"$B/bench_host" --seconds 0.1 >"$T/o" 2>"$T/e"
check "bench_host: a line per CPU with its FMA rate" '/usr/bin/python3 - "$T/o" <<PYEOF
import json, os, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["cpu"] for r in recs] == sorted(os.sched_getaffinity(0)), recs
assert all(r["slices"] == 5 and r["best_gflops"] > 0 and 0 <= r["slow_share"] <= 1 for r in recs), recs
PYEOF'
"$B/bench_host" --seconds 0 >"$T/o" 2>"$T/e"
check "bench_host --seconds 0: exit 2, says so" '[ $? -eq 2 ] && grep -q "seconds must be" "$T/e"'
check "the driver printed the host lines" 'grep -q "^host   before | FMA rate of each CPU" "$T/r.out" && grep -q "^host   after " "$T/r.out"'
rm -rf "$T"
exit $fail
