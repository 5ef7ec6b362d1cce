#!/bin/bash
# Data-parallel GPT training: `mpirun -np 2 graft-mpi train --model gpt:...`
# equals the single-process `graft train` (same global batch, seed and
# objective) within 1e-5 after 30 steps with clipping, for the causal
# objective and for infill and fim (sequences with different numbers of
# scored targets, so the ranks' gradients must be weighted by their share of
# the scored tokens, not by rows), with SGD+momentum and with AdamW (the
# text default). AdamW: the attention's key bias (c_attn.bias[embd, 2 embd)) is
# left out: its gradient is zero in exact arithmetic (softmax ignores a
# shift common to a query's scores), so Adam, dividing by the gradient's
# RMS, moves it by float noise (~1e-3 here, in one process too when the
# summation order changes). Rank 0 alone prints and reports the bytes per
# step; a batch that does not split over the ranks is refused.
set -u
. "$(dirname "$0")/lib.sh" mpi_cli_train_text_dp "$@"

# a small corpus in the KJV dump format (kjv:path=FILE needs no package)
for b in Ge Exo Lev Num Deu Josh Jdgs Ruth; do
  for v in $(seq 1 30); do
    echo "${b}1:$v And the LORD spake unto Moses in the year $((v * 7 % 13)), saying $((v % 5))."
  done
done > "$T/kjv.txt"
D="kjv:path=$T/kjv.txt,val=10%,test=10%"
common=(--model gpt:layers=1,heads=2,embd=32,block=48 --data "$D" --steps 30 --batch 8 --lr 0.01
        --eval-tokens 512 --threads 1 --quiet --seed 5)
KEY_BIAS=transformer.h.0.attn.c_attn.bias:32:64

for run in "sgd causal" "sgd infill" "sgd fim" "adamw causal" "adamw infill"; do
  set -- $run
  opt=$1 obj=$2 name=$1.$2
  skip=""; [ $opt = adamw ] && skip=$KEY_BIAS
  flags=(--optim $opt --objective $obj); [ $opt = sgd ] && flags+=(--momentum 0.9)
  "$G" train "${common[@]}" "${flags[@]}" --out "$T/$name.one" >"$T/o" 2>"$T/e"
  check "$name: graft train" '[ $? -eq 0 ]' || cat "$T/e"
  $RUN "$GM" train "${common[@]}" "${flags[@]}" --out "$T/$name.two" >"$T/o2" 2>"$T/e2"
  check "$name: mpirun -np 2 graft-mpi train" '[ $? -eq 0 ]' || cat "$T/e2"
  $CMP "$T/$name.one/model.safetensors" "$T/$name.two/model.safetensors" 1e-5 $skip
  check "$name: 2 ranks equal 1 process within 1e-5" '[ $? -eq 0 ]'
  check "$name: rank 0 alone prints the result" '[ $(grep -c "^steps 30 " "$T/o2") -eq 1 ]'
  check "$name: bytes per step reported" 'grep -q "^data-parallel: 2 ranks, [0-9]* bytes per step" "$T/o2"'
done

# The comparison can fail: another seed is far off.
"$G" train "${common[@]}" --optim sgd --momentum 0.9 --seed 6 --out "$T/seed6" >"$T/o" 2>"$T/e"
$CMP "$T/sgd.causal.one/model.safetensors" "$T/seed6/model.safetensors" 1e-5 >/dev/null 2>&1
check "comparator rejects a different run" '[ $? -ne 0 ]'

$RUN "$GM" train "${common[@]}" --batch 7 --steps 2 --out "$T/odd" >"$T/o" 2>"$T/e"
check "batch 7 over 2 ranks fails" '[ $? -ne 0 ]'
check "... naming the batch" 'grep -q "not divisible by the 2 ranks" "$T/e"'

[ $fail -eq 0 ] && rm -rf "$T"
exit $fail
