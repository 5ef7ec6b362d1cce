#!/bin/bash
# Checkpoints and --resume: a run paused at step K (--stop-at) or killed
# with SIGKILL after a checkpoint, then resumed, ends with the same
# model.safetensors and metrics.jsonl bytes as the uninterrupted run (MLP
# with SGD momentum; LeNet with AdamW, cosine schedule, augmentation and
# early-stopping state; finetune with frozen layers and with --peft lora). A checkpoint whose
# config differs, a truncated one and a model file instead of a checkpoint
# are refused with exit 1 naming the problem; resuming into a finished run
# needs --force.
set -u
G=$1
T=${GRAFT_TMP:-/tmp}/cli_resume.$$
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
D="fmnist:limit=384"
run() { "$G" "$@" --threads 1 --quiet >"$T/o" 2>"$T/e"; }
same() { cmp -s "$1/model.safetensors" "$2/model.safetensors" && cmp -s "$1/metrics.jsonl" "$2/metrics.jsonl"; }

MLP=(train --model mlp --data "$D" --steps 60 --batch 32 --eval-every 20 --optim sgd --momentum 0.9 --lr 0.05)
LENET=(train --model lenet --data "$D" --steps 45 --batch 32 --eval-every 10 --optim adamw --lr 0.002 --wd 0.01
       --schedule cosine --warmup 5 --augment crop,flip --patience 4)

for name in MLP LENET; do
  eval "cmd=(\"\${$name[@]}\")"
  run "${cmd[@]}" --out "$T/$name.ref"
  check "$name: uninterrupted run" '[ $? -eq 0 ]'
  run "${cmd[@]}" --out "$T/$name.ck" --ckpt-every 7
  check "$name: --ckpt-every does not change the result" 'same "$T/$name.ref" "$T/$name.ck" && [ -s "$T/$name.ck/checkpoint.safetensors" ]'
  run "${cmd[@]}" --out "$T/$name.p" --stop-at 23 --ckpt-every 10
  check "$name: --stop-at 23 pauses without a model" '[ $? -eq 0 ] && grep -q "paused after step 23" "$T/o" && [ ! -e "$T/$name.p/model.safetensors" ]'
  run "${cmd[@]}" --out "$T/$name.p" --resume "$T/$name.p"
  check "$name: --resume in place continues from step 23" '[ $? -eq 0 ] && grep -q "at step 23" "$T/o"'
  check "$name: paused + resumed equals uninterrupted byte for byte" 'same "$T/$name.ref" "$T/$name.p"'
done

# The checkpoint holds the state: the same command with another seed differs.
run "${MLP[@]}" --seed 2 --out "$T/seed2"
check "a different seed gives different bytes" '! cmp -s "$T/MLP.ref/model.safetensors" "$T/seed2/model.safetensors"'

# SIGKILL after a checkpoint was written and an evaluation logged past it.
KILL=(train --model mlp --data "$D" --steps 800 --batch 32 --eval-every 30 --optim sgd --momentum 0.9 --lr 0.02)
run "${KILL[@]}" --out "$T/kill.ref"
"$G" "${KILL[@]}" --threads 1 --quiet --ckpt-every 20 --out "$T/kill" >"$T/o" 2>"$T/e" &
pid=$!
for _ in $(seq 1000); do [ -s "$T/kill/checkpoint.safetensors" ] && [ -s "$T/kill/metrics.jsonl" ] && break; sleep 0.01; done
kill -9 $pid 2>/dev/null; { wait $pid; } 2>/dev/null; rc=$?
check "killed run: SIGKILL mid-run (rc $rc), checkpoint present, no model" \
  '[ $rc -eq 137 ] && [ -s "$T/kill/checkpoint.safetensors" ] && [ ! -e "$T/kill/model.safetensors" ]'
run "${KILL[@]}" --ckpt-every 20 --out "$T/kill" --resume "$T/kill"
check "killed run: --resume exits 0" '[ $? -eq 0 ] && grep -q "resumed" "$T/o"'
check "killed + resumed equals uninterrupted byte for byte" 'same "$T/kill.ref" "$T/kill"'

# finetune: frozen layers (optimizer state for the trainable ones only)
FT=(finetune --from "$T/MLP.ref" --data "fmnist:classes=5-9,limit=200" --steps 30 --batch 20 --freeze 'layers.0.*'
    --optim adamw --lr 0.001 --eval-every 10)
run "${FT[@]}" --out "$T/ft.ref"
run "${FT[@]}" --out "$T/ft" --stop-at 13
run "${FT[@]}" --out "$T/ft" --resume "$T/ft/checkpoint.safetensors"
check "finetune: paused + resumed equals uninterrupted" '[ $? -eq 0 ] && same "$T/ft.ref" "$T/ft"'
LORA=(finetune --from "$T/MLP.ref" --data "fmnist:classes=5-9,limit=200" --steps 30 --batch 20 --peft lora
      --optim adamw --lr 0.001 --eval-every 10)
run "${LORA[@]}" --out "$T/lora.ref"
run "${LORA[@]}" --out "$T/lora" --stop-at 13
check "finetune --peft lora: a paused run writes no adapter" '[ $? -eq 0 ] && [ ! -e "$T/lora/adapter_model.safetensors" ]'
run "${LORA[@]}" --out "$T/lora" --resume "$T/lora"
check "finetune --peft lora: paused + resumed equals uninterrupted (model and adapter)" \
  '[ $? -eq 0 ] && same "$T/lora.ref" "$T/lora" && cmp -s "$T/lora.ref/adapter_model.safetensors" "$T/lora/adapter_model.safetensors"'
run "${FT[@]}" --freeze 'layers.2.*' --out "$T/ftx" --resume "$T/ft"
check "finetune: another --freeze is refused naming the field" '[ $? -eq 1 ] && grep -q "field .freeze. differs" "$T/e"'

# refusals
run "${MLP[@]}" --batch 64 --out "$T/x" --resume "$T/MLP.p"
check "other batch: exit 1 naming the field" '[ $? -eq 1 ] && grep -q "field .batch. differs" "$T/e"'
run "${MLP[@]}" --lr 0.1 --out "$T/x" --resume "$T/MLP.p"
check "other lr: exit 1 naming the field" '[ $? -eq 1 ] && grep -q "field .lr. differs" "$T/e"'
run "${MLP[@]/mlp/lenet}" --out "$T/x" --resume "$T/MLP.p"
check "other model: exit 1 naming the field" '[ $? -eq 1 ] && grep -q "field .model. differs" "$T/e"'
head -c 3000 "$T/MLP.p/checkpoint.safetensors" >"$T/trunc.safetensors"
run "${MLP[@]}" --out "$T/x" --resume "$T/trunc.safetensors"
check "truncated checkpoint: exit 1" '[ $? -eq 1 ] && grep -q "truncated" "$T/e"'
run "${MLP[@]}" --out "$T/x" --resume "$T/MLP.ref/model.safetensors"
check "a model file is not a checkpoint: exit 1" '[ $? -eq 1 ] && grep -q "not a checkpoint" "$T/e"'
run "${MLP[@]}" --out "$T/x" --resume "$T/nothing"
check "missing checkpoint: exit 1" '[ $? -eq 1 ]'
check "refusals created no output" '[ ! -e "$T/x" ]'
run "${MLP[@]}" --out "$T/MLP.p" --resume "$T/MLP.p"
check "resuming into a finished run needs --force" '[ $? -eq 1 ] && grep -q -- "--force" "$T/e"'
run "${MLP[@]}" --out "$T/MLP.ck" --resume "$T/MLP.p"
check "resuming into another non-empty dir needs --force" '[ $? -eq 1 ] && grep -q -- "--force" "$T/e"'
run "${MLP[@]}" --out "$T/MLP.ck" --resume "$T/MLP.p" --force
check "... and with --force writes the same model" '[ $? -eq 0 ] && same "$T/MLP.ref" "$T/MLP.ck"'
run "${MLP[@]}" --out "$T/x" --ckpt-every -1
check "--ckpt-every -1: exit 2" '[ $? -eq 2 ]'
"$G" train --help >"$T/o" 2>&1
check "--help lists --resume, --ckpt-every, --stop-at" 'grep -q -- --resume "$T/o" && grep -q -- --ckpt-every "$T/o" && grep -q -- --stop-at "$T/o"'

[ $fail -eq 0 ] && rm -rf "$T"
exit $fail
