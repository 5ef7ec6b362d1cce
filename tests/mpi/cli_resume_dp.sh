#!/bin/bash
# --resume under data parallelism (rank 0 writes the checkpoint, every rank
# reads it): 2 ranks paused and resumed on 2 ranks, or killed (one rank
# SIGKILLed after a checkpoint: the job ends non-zero, the checkpoint stays
# intact) and resumed, equal the uninterrupted 2-rank run byte for byte. A
# 1-process checkpoint resumed on 2 ranks (and 2 -> 1, MLP) runs the same global
# batches, so it equals the uninterrupted runs to float summation order:
# checked within 1e-5 (the largest difference is printed).
set -u
. "$(dirname "$0")/lib.sh" mpi_cli_resume_dp "$@"
same() { cmp -s "$1/model.safetensors" "$2/model.safetensors" && cmp -s "$1/metrics.jsonl" "$2/metrics.jsonl"; }
C=(train --data "fmnist:limit=384" --steps 36 --batch 32 --eval-every 12 --threads 1 --quiet)

for model in mlp lenet; do
  M=("${C[@]}" --model $model)
  [ $model = lenet ] && M+=(--optim adamw --lr 0.002 --augment crop,flip)
  "$G" "${M[@]}" --out "$T/$model.one" >"$T/o" 2>"$T/e"
  check "$model: graft train (1 process)" '[ $? -eq 0 ]'
  $RUN "$GM" "${M[@]}" --out "$T/$model.two" >"$T/o" 2>"$T/e"
  check "$model: 2 ranks" '[ $? -eq 0 ]'
  # 2 -> 2
  $RUN "$GM" "${M[@]}" --out "$T/$model.22" --stop-at 19 >"$T/o" 2>"$T/e"
  check "$model: 2 ranks pause at step 19" '[ $? -eq 0 ] && grep -q "paused after step 19" "$T/o"'
  $RUN "$GM" "${M[@]}" --out "$T/$model.22" --resume "$T/$model.22" >"$T/o" 2>"$T/e"
  check "$model: 2 -> 2 resume equals the 2-rank run byte for byte" '[ $? -eq 0 ] && same "$T/$model.two" "$T/$model.22"'
  check "$model: rank 0 alone prints" '[ $(grep -c "^resumed" "$T/o") -eq 1 ]'
  # 1 -> 2
  "$G" "${M[@]}" --out "$T/$model.12" --stop-at 19 >"$T/o" 2>"$T/e"
  $RUN "$GM" "${M[@]}" --out "$T/$model.12" --resume "$T/$model.12" >"$T/o" 2>"$T/e"
  check "$model: 1 -> 2 resume exits 0 with a note on the rank count" '[ $? -eq 0 ] && grep -q "written by 1 ranks, this run has 2" "$T/e"'
  echo -n "$model 1->2 vs 1 process: "; $CMP "$T/$model.one/model.safetensors" "$T/$model.12/model.safetensors" 1e-5
  check "$model: 1 -> 2 equals the 1-process run within 1e-5" '[ $? -eq 0 ]'
  echo -n "$model 1->2 vs 2 ranks:   "; $CMP "$T/$model.two/model.safetensors" "$T/$model.12/model.safetensors" 1e-5
  check "$model: 1 -> 2 equals the 2-rank run within 1e-5" '[ $? -eq 0 ]'
  [ $model = lenet ] && continue # 2 -> 1 once (mlp) keeps the test short
  # 2 -> 1
  $RUN "$GM" "${M[@]}" --out "$T/$model.21" --stop-at 19 >"$T/o" 2>"$T/e"
  "$G" "${M[@]}" --out "$T/$model.21" --resume "$T/$model.21" >"$T/o" 2>"$T/e"
  check "$model: 2 -> 1 resume exits 0" '[ $? -eq 0 ]'
  echo -n "$model 2->1 vs 1 process: "; $CMP "$T/$model.one/model.safetensors" "$T/$model.21/model.safetensors" 1e-5
  check "$model: 2 -> 1 equals the 1-process run within 1e-5" '[ $? -eq 0 ]'
done
echo -n "a different seed for contrast: "; "$G" "${C[@]}" --model mlp --seed 5 --out "$T/seed5" >"$T/o" 2>"$T/e"
$CMP "$T/mlp.one/model.safetensors" "$T/seed5/model.safetensors" 1e-5
check "the comparison can fail" '[ $? -ne 0 ]'

# Kill one rank after the first checkpoint: non-zero exit within seconds,
# the checkpoint intact; resuming it on 2 ranks gives the uninterrupted bytes.
K=(train --model mlp --data "fmnist:limit=384" --steps 300 --batch 32 --eval-every 50 --threads 1 --quiet)
$RUN "$GM" "${K[@]}" --out "$T/kill.ref" >"$T/o" 2>"$T/e"
$RUN "$GM" "${K[@]}" --ckpt-every 10 --out "$T/kill" >"$T/o" 2>"$T/e" &
job=$!
for _ in $(seq 1000); do [ -s "$T/kill/checkpoint.safetensors" ] && break; sleep 0.01; done
victim=$(pgrep -P $job | tail -1)
kill_rank $job "$victim"
check "killed rank: job exits non-zero (rc $rc) within 30 s ($secs s), no model written" \
  '[ -n "$victim" ] && [ $rc -ne 0 ] && [ $secs -le 30 ] && [ ! -e "$T/kill/model.safetensors" ]'
$RUN "$GM" "${K[@]}" --ckpt-every 10 --out "$T/kill" --resume "$T/kill" >"$T/o" 2>"$T/e"
check "killed rank: the checkpoint loads and the resumed run equals the uninterrupted one" \
  '[ $? -eq 0 ] && grep -q "^resumed" "$T/o" && same "$T/kill.ref" "$T/kill"' || cat "$T/e"

[ $fail -eq 0 ] && rm -rf "$T"
exit $fail
