#!/bin/bash
# Data-parallel training: `mpirun -np 2 graft-mpi train` equals the
# single-process `graft train` (same global batch and seed) within 1e-5
# after 100 steps for an MLP and LeNet; uneven batch split is refused; a
# rank killed mid-run ends the job with a non-zero exit within seconds and
# the previous model directory stays intact.
set -u
. "$(dirname "$0")/lib.sh" mpi_cli_train_dp "$@"
D="fmnist:limit=512"
common=(--data "$D" --steps 100 --batch 32 --threads 1 --quiet)

for model in mlp lenet; do
  "$G" train --model $model "${common[@]}" --seed 3 --out "$T/$model.one" >"$T/o" 2>"$T/e"
  check "$model: graft train" '[ $? -eq 0 ]'
  $RUN "$GM" train --model $model "${common[@]}" --seed 3 --out "$T/$model.two" >"$T/o2" 2>"$T/e2"
  check "$model: mpirun -np 2 graft-mpi train" '[ $? -eq 0 ]' || cat "$T/e2"
  $CMP "$T/$model.one/model.safetensors" "$T/$model.two/model.safetensors" 1e-5
  check "$model: 2 ranks equal 1 process within 1e-5" '[ $? -eq 0 ]'
  check "$model: rank 0 alone prints the result" '[ $(grep -c "^trainable parameters" "$T/o2") -eq 1 ]'
done
# The comparison can fail: a different seed is far off.
"$G" train --model mlp "${common[@]}" --seed 4 --out "$T/mlp.seed4" >"$T/o" 2>"$T/e"
$CMP "$T/mlp.one/model.safetensors" "$T/mlp.seed4/model.safetensors" 1e-5 >/dev/null 2>&1
check "comparator rejects a different run" '[ $? -ne 0 ]'

$RUN "$GM" train --model mlp --data "$D" --steps 2 --batch 33 --threads 1 --quiet --out "$T/odd" >"$T/o" 2>"$T/e"
check "batch 33 over 2 ranks fails" '[ $? -ne 0 ]'
check "... naming the batch" 'grep -q "not divisible by the 2 ranks" "$T/e"'

# Kill one rank mid-run: the job stops within seconds, non-zero, and the
# model written before (mlp.two) is untouched.
cp "$T/mlp.two/model.safetensors" "$T/before.safetensors"
$RUN "$GM" train --model mlp --data "$D" --steps 1000000 --batch 32 --threads 1 --quiet --force \
  --out "$T/mlp.two" >"$T/o" 2>"$T/e" &
job=$!
victim=""
for _ in $(seq 100); do
  victim=$(pgrep -P $job | tail -1)
  [ -n "$victim" ] && [ "$(pgrep -P $job | wc -l)" -ge 2 ] && break
  sleep 0.2
done
sleep 2
kill_rank $job "$victim"
check "killed rank: job exits non-zero (rc $rc)" '[ -n "$victim" ] && [ $rc -ne 0 ]'
check "killed rank: job ends within 30 s ($secs s)" '[ $secs -le 30 ]'
check "killed rank: previous model intact" 'cmp -s "$T/before.safetensors" "$T/mlp.two/model.safetensors"'

[ $fail -eq 0 ] && rm -rf "$T"
exit $fail
