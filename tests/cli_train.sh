#!/bin/bash
# graft train / finetune / eval on small Fashion-MNIST subsets (MLP, fast):
# model directories, metrics.jsonl, eval --json, freezing, bad input.
set -u
G=$1
T=${GRAFT_TMP:-/tmp}/cli_train.$$
PY=${GRAFT_PYTHON:-python3}
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
SRC="fmnist:classes=0-4,limit=2000"
SRC_TEST="fmnist:split=test,classes=0-4,limit=500"
TGT="fmnist:classes=5-9,labels=20/class"
TGT_TEST="fmnist:split=test,classes=5-9,limit=500"

"$G" train --model mlp --data "$SRC" --test-data "$SRC_TEST" --epochs 1 --eval-every 10 --out "$T/src" --quiet >"$T/o" 2>"$T/e"
check "train exits 0" '[ $? -eq 0 ]'
check "train writes a model directory" '[ -s "$T/src/model.safetensors" ] && [ -s "$T/src/config.json" ] && [ -s "$T/src/metrics.jsonl" ]'
check "metrics.jsonl has evaluations and a final record" '"$PY" - "$T/src/metrics.jsonl" <<PYEOF
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
assert len(rs) >= 3 and rs[-1]["type"] == "final" and len(rs[-1]["per_class_accuracy"]) == 5, rs[-1]
assert all(0 <= r["accuracy"] <= 1 for r in rs)
PYEOF'
check "model.safetensors loads in torch with state_dict names" '"$PY" - "$T/src/model.safetensors" <<PYEOF
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
assert h["__metadata__"] == {"format": "pt"}
assert h["layers.0.weight"]["shape"] == [256, 784] and h["layers.4.bias"]["shape"] == [5], h.keys()
PYEOF'

"$G" finetune --from "$T/src" --data "$TGT" --test-data "$TGT_TEST" --steps 40 --freeze 'layers.0.*' --out "$T/ft" --quiet >"$T/o" 2>"$T/e"
check "finetune --freeze exits 0" '[ $? -eq 0 ] && grep -q "trainable parameters 33541 of 234501" "$T/o"'
"$G" finetune --from "$T/src" --data "$TGT" --test-data "$TGT_TEST" --steps 40 --head-only --out "$T/lp" --quiet >"$T/o" 2>"$T/e"
check "finetune --head-only trains only the head" '[ $? -eq 0 ] && grep -q "trainable parameters 645 of" "$T/o"'
"$G" eval --model "$T/ft" --data "$TGT_TEST" --json >"$T/o" 2>"$T/e"
check "eval --json parses" '[ $? -eq 0 ] && "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"n\"]==500 and 0<=d[\"accuracy\"]<=1" "$T/o"'

# bad input
"$G" train --model mlp --data "$SRC" --out "$T/src" --quiet >"$T/o" 2>"$T/e"
check "existing out dir without --force exits 1" '[ $? -eq 1 ] && grep -q -- --force "$T/e"'
"$G" train --model mlp --data "$SRC" --test-data "$SRC_TEST" --steps 2 --out "$T/src" --force --quiet >"$T/o" 2>"$T/e"
check "--force overwrites" '[ $? -eq 0 ]'
"$G" train --model vgg --data "$SRC" --out "$T/x" >"$T/o" 2>"$T/e"; check "unknown model exits 2" '[ $? -eq 2 ]'
"$G" train --model mlp --data "$SRC" --out "$T/x" --lr -1 >"$T/o" 2>"$T/e"; check "negative lr exits 2" '[ $? -eq 2 ]'
"$G" train --model mlp --out "$T/x" >"$T/o" 2>"$T/e"; check "missing --data exits 2" '[ $? -eq 2 ]'
"$G" train --bogus >"$T/o" 2>"$T/e"; check "unknown flag exits 2" '[ $? -eq 2 ]'
"$G" train --model mlp --data "fmnist:classes=9-5" --out "$T/x" >"$T/o" 2>"$T/e"; check "bad data spec exits 1" '[ $? -eq 1 ] && grep -q classes "$T/e"'
GRAFT_FMNIST_DIR="$T/none" "$G" train --model mlp --data "$SRC" --out "$T/y" >"$T/o" 2>"$T/e"
check "missing dataset names the package" '[ $? -eq 1 ] && grep -q dataset-fashion-mnist "$T/e"'
"$G" finetune --from "$T/nope" --data "$TGT" --out "$T/z" >"$T/o" 2>"$T/e"; check "missing --from dir exits 1" '[ $? -eq 1 ]'
"$G" finetune --data "$TGT" --out "$T/z" >"$T/o" 2>"$T/e"; check "finetune without --from exits 2" '[ $? -eq 2 ]'
"$G" finetune --from "$T/src" --data "$TGT" --freeze 'nothing.*' --out "$T/z2" --steps 1 >"$T/o" 2>"$T/e"
check "--freeze matching nothing exits 1" '[ $? -eq 1 ] && grep -q nothing "$T/e"'
"$G" eval --model "$T/src" >"$T/o" 2>"$T/e"; check "eval without --data exits 2" '[ $? -eq 2 ]'
for v in train finetune eval; do "$G" $v --help >"$T/o" 2>&1; check "$v --help exits 0" '[ $? -eq 0 ] && grep -q -- --seed "$T/o" || [ $v = eval ]'; done
rm -rf "$T"
exit $fail
