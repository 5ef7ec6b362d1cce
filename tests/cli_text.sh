#!/bin/bash
# graft train --model gpt:... / graft generate on a small synthetic corpus in
# the KJV dump format (kjv:path=FILE, so no package is needed): a run whose
# validation loss drops, the model directory, fine-tuning with --from and the
# mix and fim objectives, infill generation, and the errors of both verbs
# (empty corpus, sequence or prompt beyond the block size, unknown
# characters, empty prompt, too small a block for infill objectives).
set -u
G=$1
T=${GRAFT_TMP:-/tmp}/cli_text.$$
PY=${GRAFT_PYTHON:-python3}
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }

# 16 books x 40 verses of simple repetitive text
for b in Ge Exo Lev Num Deu Josh Jdgs Ruth Ezra Neh Est Job Psa Prv Eccl Isa; do
  for v in $(seq 1 40); do
    echo "${b}1:$v And the LORD spake unto Moses, saying, Speak unto the children of Israel $((v % 7))."
  done
done > "$T/kjv.txt"
D="kjv:path=$T/kjv.txt,val=15%,test=10%"
M="gpt:layers=1,heads=2,embd=32,block=64"

"$G" train --model "$M" --data "$D" --steps 40 --eval-every 10 --batch 8 --lr 0.01 --out "$T/m" --quiet >"$T/o" 2>"$T/e"
check "train exits 0" '[ $? -eq 0 ]'
check "train writes a GPT model directory" '[ -s "$T/m/model.safetensors" ] && grep -q "\"architecture\":.*\"gpt\"" "$T/m/config.json" && [ -s "$T/m/metrics.jsonl" ]'
check "validation loss drops and beats the unigram baseline" '"$PY" - "$T/m/metrics.jsonl" <<PYEOF
import json, math, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
assert len(rs) == 4, rs
assert rs[-1]["val_loss"] < rs[0]["val_loss"] and rs[-1]["val_loss"] < math.log(267) - 2, rs
assert rs[-1]["val_bpc"] < rs[-1]["unigram_bpc"], rs[-1]
PYEOF'
"$G" generate --model "$T/m" --prompt "And the" --tokens 20 --seed 2 >"$T/g" 2>"$T/e"
check "generate exits 0 and continues the prompt" '[ $? -eq 0 ] && head -c 7 "$T/g" | grep -q "And the" && [ $(wc -c <"$T/g") -gt 20 ]'
"$G" generate --model "$T/m" --prompt "And the" --tokens 10 --temperature 0 >"$T/g1" && "$G" generate --model "$T/m" --prompt "And the" --tokens 10 --temperature 0 --no-cache >"$T/g2"
check "greedy generation is the same with and without the KV cache" 'cmp -s "$T/g1" "$T/g2"'

"$G" train --from "$T/m" --data "$D" --objective mix --steps 10 --batch 4 --out "$T/ft" --quiet >"$T/o" 2>"$T/e"
check "fine-tune --from with the mix objective exits 0" '[ $? -eq 0 ] && grep -q "\"objective\":.*\"mix\"" "$T/ft/config.json"'
"$G" generate --model "$T/ft" --prompt "And the LORD " --suffix " unto Moses" --tokens 12 --temperature 0 >"$T/g" 2>"$T/e"
check "infill generation (--suffix) exits 0" '[ $? -eq 0 ] && grep -q "unto Moses" "$T/g"'

"$G" train --from "$T/m" --data "$D" --objective fim --steps 10 --batch 4 --out "$T/fim" --quiet >"$T/o" 2>"$T/e"
check "fine-tune --from with the fim objective exits 0" '[ $? -eq 0 ] && grep -q "\"objective\":.*\"fim\"" "$T/fim/config.json"'
"$G" generate --model "$T/fim" --prompt "And the LORD " --suffix " unto Moses" --tokens 12 --temperature 0 >"$T/g" 2>"$T/e"
check "infill generation from the fim model exits 0" '[ $? -eq 0 ] && grep -q "unto Moses" "$T/g"'
"$G" train --from "$T/m" --data "$D" --objective fim-spm --steps 10 --batch 4 --out "$T/spm" --quiet >"$T/o" 2>"$T/e"
check "fine-tune --from with the fim-spm objective exits 0" '[ $? -eq 0 ] && grep -q "\"objective\":.*\"fim-spm\"" "$T/spm/config.json"'
"$G" generate --model "$T/spm" --prompt "And the LORD " --suffix " unto Moses" --tokens 12 --temperature 0 >"$T/g" 2>"$T/e"
check "infill generation from the fim-spm model (SPM layout) exits 0" '[ $? -eq 0 ] && head -c 13 "$T/g" | grep -q "And the LORD" && grep -q "unto Moses" "$T/g"'
"$G" study text --out "$T/st" --source-dir "$T/m" >/dev/null 2>"$T/e"; rc=$?
check "study text: --source-dir without --causal-dir is a usage error" '[ $rc -eq 2 ] && grep -q "go together" "$T/e"'

# errors
"$G" generate --model "$T/m" --prompt "" >/dev/null 2>"$T/e"; rc=$?
check "empty prompt: exit 1 with a message" '[ $rc -eq 1 ] && grep -q "prompt is empty" "$T/e"'
"$G" generate --model "$T/m" >/dev/null 2>"$T/e"; rc=$?
check "missing --prompt: usage error" '[ $rc -eq 2 ]'
"$G" generate --model "$T/none" --prompt x >/dev/null 2>"$T/e"; rc=$?
check "missing model directory: exit 1 naming config.json" '[ $rc -eq 1 ] && grep -q "config.json" "$T/e"'
"$G" generate --model "$T/m" --prompt "And" --tokens 100 >/dev/null 2>"$T/e"; rc=$?
check "prompt + tokens beyond the block size: exit 1" '[ $rc -eq 1 ] && grep -q "block size" "$T/e"'
"$G" train --model "$M" --data "$D" --tokenizer char --steps 2 --out "$T/c" --quiet >/dev/null 2>"$T/e"
"$G" generate --model "$T/c" --prompt "Zebra" >/dev/null 2>"$T/e"; rc=$?
check "char vocabulary: unknown character is an error" '[ $rc -eq 1 ] && grep -q "not in the vocabulary" "$T/e"'
"$G" generate --model "$T/c" --prompt "And the" --suffix " Zebra" >/dev/null 2>"$T/e"; rc=$?
check "char vocabulary: unknown character in the suffix is an error" '[ $rc -eq 1 ] && grep -q "not in the vocabulary" "$T/e"'
"$G" generate --model "$T/m" --prompt "$(printf '%080d' 0)" --tokens 1 >/dev/null 2>"$T/e"; rc=$?
check "prompt alone longer than the block size: exit 1" '[ $rc -eq 1 ] && grep -q "block size" "$T/e"'
"$G" train --model "$M" --data "$D" --steps 2 --seq 65 --out "$T/x1" >/dev/null 2>"$T/e"; rc=$?
check "--seq beyond the block size: usage error" '[ $rc -eq 2 ] && grep -q "block size" "$T/e"'
"$G" train --model "$M" --data "$D" --steps 2 --objective bert --out "$T/x2" >/dev/null 2>"$T/e"; rc=$?
check "unknown objective: usage error" '[ $rc -eq 2 ]'
"$G" train --model "gpt:layers=x" --data "$D" --steps 2 --out "$T/x3" >/dev/null 2>"$T/e"; rc=$?
check "bad model spec: usage error" '[ $rc -eq 2 ]'
mkdir -p "$T/empty"
"$G" train --model "$M" --data "ccode:dir=$T/empty" --steps 2 --out "$T/x4" >/dev/null 2>"$T/e"; rc=$?
check "empty corpus: exit 1 with a message" '[ $rc -eq 1 ] && grep -q "empty corpus" "$T/e"'
: >"$T/empty.txt"
"$G" train --model "$M" --data "kjv:path=$T/empty.txt" --steps 2 --out "$T/x6" >/dev/null 2>"$T/e"; rc=$?
check "empty corpus file: exit 1 with a message" '[ $rc -eq 1 ] && grep -q "empty corpus" "$T/e"'
"$G" train --model "$M" --data "$D" --steps 2 --objective fim --seq 12 --out "$T/x7" >/dev/null 2>"$T/e"; rc=$?
check "fim with too small a block: exit 1" '[ $rc -eq 1 ] && grep -q "too small" "$T/e"'
"$G" train --model "$M" --data "$D" --steps 2 --objective infill --seq 20 --out "$T/x5" >/dev/null 2>"$T/e"; rc=$?
check "infill with too small a block: exit 1" '[ $rc -eq 1 ] && grep -q "too small" "$T/e"'

rm -rf "$T"
exit $fail
