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
  "$G" import "$MODEL" --out "$T/cls" > "$T/out" 2>&1 || fail "import of the classifier: $(cat "$T/out")"
  [ -s "$T/cls/model.safetensors" ] && [ -s "$T/cls/config.json" ] || fail "model dir incomplete"
  "$G" inspect "$T/cls/model.safetensors" | grep -q "250 tensors" || fail "expected 250 weight tensors"
  grep -q '"architecture":[[:space:]]*"onnx_graph"' "$T/cls/config.json" || fail "config.json architecture"
  "$GRAFT_PYTHON" -c "import json,sys; g=json.load(open(sys.argv[1]))['graph']; assert len(g['nodes'])==221, len(g['nodes'])" \
    "$T/cls/config.json" || fail "config.json nodes"
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
