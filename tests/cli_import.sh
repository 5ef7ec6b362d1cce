#!/usr/bin/env bash
# cli_import.sh — `graft import`: the PaddleOCR classifier (when fetched by
# scripts/fetch_models.sh) becomes model.safetensors + config.json; an
# unsupported op, a truncated file and a missing --out fail with a message.
set -u
G="$1"
T="${GRAFT_TMP:-/tmp}/cli_import.$$"
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
NODE=/usr/share/libonnx-testdata/data/node
MODEL="${GRAFT_MODELS:-$GRAFT_SRC/build/models}/ch_ppocr_mobile_v2.0_cls_infer.onnx"

if [ -s "$MODEL" ]; then
  "$G" import "$MODEL" --out "$T/nosize" > "$T/out" 2>&1
  [ $? -eq 1 ] && grep -q -- "--input-size" "$T/out" || fail "symbolic input size must ask for --input-size: $(cat "$T/out")"
  "$G" import "$MODEL" --out "$T/cls" --input-size 3x48x192 > "$T/out" 2>&1 || fail "import of the classifier: $(cat "$T/out")"
  [ -s "$T/cls/model.safetensors" ] && [ -s "$T/cls/config.json" ] || fail "model dir incomplete"
  "$G" inspect "$T/cls/model.safetensors" | grep -q "250 tensors" || fail "expected 250 weight tensors"
  grep -q '"architecture":[[:space:]]*"onnx_graph"' "$T/cls/config.json" || fail "config.json architecture"
  "$GRAFT_PYTHON" -c "import json,sys; g=json.load(open(sys.argv[1]))['graph']; assert len(g['nodes'])==221, len(g['nodes'])" \
    "$T/cls/config.json" || fail "config.json nodes"
  # --input-scale/--input-shift reach config.json (they were once read into floats as doubles and lost)
  "$G" import "$MODEL" --out "$T/pm1" --input-size 3x48x192 --input-scale 2 --input-shift -1 > "$T/out" 2>&1 || fail "import with scale: $(cat "$T/out")"
  "$GRAFT_PYTHON" -c "import json,sys; c=json.load(open(sys.argv[1])); assert (c['input_scale'], c['input_shift']) == (2, -1), c['input_scale']" \
    "$T/pm1/config.json" || fail "config.json input_scale/input_shift"
  # the imported directory is an ordinary model directory: eval, then a
  # fine-tune with a new head on the penultimate features, then eval of that
  "$G" eval --model "$T/cls" --data fmnist:split=test,classes=0-1,limit=16 --json > "$T/out" 2>&1 ||
    fail "eval of the imported classifier: $(cat "$T/out")"
  grep -q '"accuracy"' "$T/out" || fail "eval --json output: $(cat "$T/out")"
  "$G" finetune --from "$T/cls" --data fmnist:classes=0-2,labels=4/class --test-data fmnist:split=test,classes=0-2,limit=12 \
    --steps 2 --batch 6 --freeze 'conv2d_*' --out "$T/ft" > "$T/out" 2>&1 || fail "finetune of the classifier: $(cat "$T/out")"
  grep -q '"head_in"' "$T/ft/config.json" || fail "fine-tuned config.json lacks the head"
  "$G" eval --model "$T/ft" --data fmnist:split=test,classes=0-2,limit=12 > "$T/out" 2>&1 || fail "eval of the fine-tuned graph: $(cat "$T/out")"
  "$G" finetune --from "$T/cls" --data fmnist:classes=0-2,labels=2/class --steps 1 --features-at nonexistent \
    --out "$T/ft2" > "$T/out" 2>&1
  [ $? -eq 1 ] && grep -q "nonexistent" "$T/out" || fail "unknown --features-at must fail naming it: $(cat "$T/out")"
else
  echo "note: $MODEL missing (scripts/fetch_models.sh): classifier part skipped"
fi
if [ -d "$NODE" ]; then
  "$G" import "$NODE/test_lstm_defaults/model.onnx" --out "$T/lstm" > "$T/out" 2>&1
  [ $? -eq 1 ] && grep -q "unsupported ONNX ops: LSTM" "$T/out" || fail "LSTM must be refused by name: $(cat "$T/out")"
  head -c 100 "$NODE/test_conv_with_strides_padding/model.onnx" > "$T/trunc.onnx"
  "$G" import "$T/trunc.onnx" --out "$T/trunc" > "$T/out" 2>&1
  [ $? -eq 1 ] && grep -q "trunc.onnx" "$T/out" || fail "truncated file: $(cat "$T/out")"
fi
"$G" import "$T/none.onnx" > /dev/null 2>&1
[ $? -eq 2 ] || fail "missing --out must be a usage error"
"$G" import "$T/none.onnx" --out "$T/none" > "$T/out" 2>&1
[ $? -eq 1 ] || fail "missing file must fail"
[ $fails -eq 0 ] && echo "cli_import: ok"
exit $fails
