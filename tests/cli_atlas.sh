#!/bin/bash
# graft taskvec atlas end to end on small Fashion-MNIST subsets (MLP, fast):
# two fine-tunes -> task vectors -> learned coefficients; outputs, lr 0
# reproduces the base bit for bit, the composed model evaluates, bad input.
set -u
G=$1
T=${GRAFT_TMP:-/tmp}/cli_atlas.$$
PY=${GRAFT_PYTHON:-python3}
rm -rf "$T"; mkdir -p "$T"
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
D="fmnist:classes=0-4,limit=600"
"$G" train --model mlp --data "$D" --steps 20 --out "$T/base" --quiet >"$T/o" 2>"$T/e" || { cat "$T/e"; exit 1; }
"$G" finetune --from "$T/base" --data "fmnist:classes=0-4,limit=300" --steps 15 --seed 2 --out "$T/ft1" --quiet >"$T/o" 2>"$T/e"
"$G" finetune --from "$T/base" --data "fmnist:classes=0-4,limit=300" --steps 15 --seed 3 --out "$T/ft2" --quiet >"$T/o" 2>"$T/e"
"$G" taskvec extract "$T/ft1" "$T/base" --out "$T/tv1" >"$T/o" 2>"$T/e"
"$G" taskvec extract "$T/ft2" "$T/base" --out "$T/tv2" >"$T/o" 2>"$T/e"
check "fine-tunes and task vectors" '[ -s "$T/tv1/model.safetensors" ] && [ -s "$T/tv2/model.safetensors" ]'

"$G" taskvec atlas "$T/base" "$T/tv1" "$T/tv2/model.safetensors" --data "$D" --val-data "fmnist:split=test,classes=0-4,limit=200" \
  --steps 12 --batch 64 --lr 0.05 --init 0.5 --out "$T/at" --quiet >"$T/o" 2>"$T/e"
check "atlas exits 0 and prints the table" '[ $? -eq 0 ] && grep -q "2 task vectors x 6 blocks = 12 coefficients" "$T/o" && grep -q "layers.4.bias" "$T/o"'
check "atlas.json holds a 2x6 table and the fit" '"$PY" - "$T/at/atlas.json" <<PYEOF
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["lambda"]) == 2 and all(len(r) == 6 for r in d["lambda"]), d
assert d["blocks"][0] == "layers.0.weight" and d["steps"] == 12 and 0 <= d["val_accuracy"] <= 1, d
assert any(abs(v - 0.5) > 1e-6 for r in d["lambda"] for v in r), "coefficients never moved"
PYEOF'
"$G" eval --model "$T/at" --data "fmnist:classes=0-4,limit=200" --json >"$T/o" 2>"$T/e"
check "the composed model evaluates" '[ $? -eq 0 ] && grep -q accuracy "$T/o"'

"$G" taskvec atlas "$T/base" "$T/tv1" --data "$D" --steps 3 --lr 0 --wd 0 --out "$T/zero" --quiet >"$T/o" 2>"$T/e"
check "lr 0 from init 0 writes the base weights bit for bit" '[ $? -eq 0 ] && "$PY" - "$T/base/model.safetensors" "$T/zero/model.safetensors" <<PYEOF
import json, struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, z = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == z.keys() and all(a[k] == z[k] for k in a), "weights differ"
PYEOF'

# bad input
"$G" taskvec atlas "$T/base" "$T/nope" --data "$D" --out "$T/x1" >"$T/o" 2>"$T/e"
check "missing task vector exits 1" '[ $? -eq 1 ] && grep -q nope "$T/e"'
"$G" train --model lenet --data "$D" --steps 1 --out "$T/other" --quiet >"$T/o" 2>"$T/e"
"$G" taskvec atlas "$T/base" "$T/other" --data "$D" --out "$T/x2" >"$T/o" 2>"$T/e"
check "task vector of another model exits 1" '[ $? -eq 1 ]'
"$G" taskvec atlas "$T/base" "$T/tv1" --out "$T/x3" >"$T/o" 2>"$T/e"; check "missing --data exits 2" '[ $? -eq 2 ]'
"$G" taskvec atlas "$T/base" --data "$D" --out "$T/x4" >"$T/o" 2>"$T/e"; check "no task vector exits 2" '[ $? -eq 2 ]'
"$G" taskvec atlas "$T/base" "$T/tv1" --data "$D" --steps 0 --out "$T/x5" >"$T/o" 2>"$T/e"; check "--steps 0 exits 1" '[ $? -eq 1 ]'
"$G" taskvec atlas "$T/base" "$T/tv1" --data "fmnist:classes=0-4,limit=50,bogus=1" --out "$T/x6" >"$T/o" 2>"$T/e"
check "bad data spec exits 1" '[ $? -eq 1 ]'
"$G" taskvec atlas --help >"$T/o" 2>&1; check "--help exits 0" '[ $? -eq 0 ] && grep -q -- --val-data "$T/o"'
rm -rf "$T"
exit $fail
