#!/usr/bin/env bash
# cli_study_backbone.sh — `graft study` with a "backbone": an imported
# network (the PaddleOCR classifier, small and quick) transferred to a few
# real digits by every method (raw-linear, probe, probe-random, finetune,
# finetune-random, lp-ft) in a tiny setting; results.jsonl and report.html are
# written; candidates (two cuts, two C values) picked by cross-validation
# with a feature cache on disk and exported features; a rerun reads every
# feature from the cache and gives the same accuracies, changed weights do
# not; bad configs fail
# with messages. Skips without the model or
# digits.png (scripts/fetch_models.sh).
set -u
G="$1"
T="${GRAFT_TMP:-/tmp}/cli_study_backbone.$$"
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
MODEL="${GRAFT_MODELS:-$GRAFT_SRC/build/models}/ch_ppocr_mobile_v2.0_cls_infer.onnx"
DIGITS="${GRAFT_DIGITS:-$GRAFT_SRC/build/data/digits.png}"
if [ ! -s "$MODEL" ] || [ ! -s "$DIGITS" ]; then
  echo "skip: $MODEL or $DIGITS missing (scripts/fetch_models.sh)"
  exit 77
fi
"$G" import "$MODEL" --out "$T/cls" --input-size 3x48x64 > "$T/out" 2>&1 || fail "import: $(cat "$T/out")"
cat > "$T/study.json" <<JSON
{"backbone": "$T/cls", "data": "digits:path=$DIGITS,classes=0-2",
 "test_data": "digits:path=$DIGITS,split=test,classes=0-2,limit=15", "labels_per_class": [2],
 "probe_epochs": 3, "finetune_epochs": 1, "batch": 3}
JSON
"$G" study "$T/study.json" --out "$T/s" --threads 1 > "$T/out" 2>&1 || fail "backbone study: $(tail -5 "$T/out")"
for m in raw-linear probe probe-random finetune finetune-random lp-ft; do
  grep -q "\"method\":[[:space:]]*\"$m\"" "$T/s/results.jsonl" || fail "results.jsonl lacks $m"
done
[ -s "$T/s/report.html" ] || fail "no report.html"
cat > "$T/cv.json" <<JSON
{"backbone": ["$T/cls"], "features_at": ["x", null], "probe_c": [0.1, 1],
 "data": "digits:path=$DIGITS,classes=0-2", "cv_folds": 2, "test_seed": 3, "seeds": 2, "pad": [0, 2],
 "test_data": "digits:path=$DIGITS,split=test,classes=0-2,limit=15", "labels_per_class": [2],
 "probe_epochs": 3, "batch": 3, "init": "pytorch", "recalibrate_images": 6,
 "feature_cache": "$T/cache", "export_features": "$T/export",
 "methods": ["raw-linear", "probe", "probe-random"]}
JSON
mkdir -p "$T/cache" "$T/export"
"$G" study "$T/cv.json" --out "$T/cv" --threads 1 > "$T/out" 2>&1 || fail "cv study: $(tail -5 "$T/out")"
grep -q "probe seed 2 picked: backbone" "$T/out" || fail "no pick printed: $(tail -5 "$T/out")"
grep -q '"cv_accuracy"' "$T/cv/results.jsonl" || fail "results.jsonl lacks cv_accuracy"
[ "$(ls "$T/cache" | grep -c '\.grfc$')" -ge 3 ] || fail "feature caches: $(ls "$T/cache")"
[ -s "$T/export/probe-random-seed1-test.csv" ] || fail "no exported features: $(ls "$T/export")"
sums1=$(cat "$T/cache"/*.grfc | md5sum)
"$G" study "$T/cv.json" --out "$T/cv2" --threads 1 > "$T/out2" 2>&1 || fail "cv rerun: $(tail -5 "$T/out2")"
[ "$sums1" = "$(cat "$T/cache"/*.grfc | md5sum)" ] || fail "the rerun changed the caches"
acc() { grep -o '"accuracy":[^,]*' "$1" | tr '\n' ' '; }
[ "$(acc "$T/cv/results.jsonl")" = "$(acc "$T/cv2/results.jsonl")" ] || fail "rerun from the cache differs"
# other weights of the same size: the cache must not serve the old features
n_caches=$(ls "$T/cache" | grep -c '\.grfc$')
w="$T/cls/model.safetensors"
printf '\001' | dd of="$w" bs=1 seek=$(($(stat -c %s "$w") - 1)) conv=notrunc 2>/dev/null
"$G" study "$T/cv.json" --out "$T/cv4" --threads 1 > "$T/out" 2>&1 || fail "rerun, new weights: $(tail -5 "$T/out")"
[ "$(ls "$T/cache" | grep -c '\.grfc$')" -gt "$n_caches" ] || fail "changed weights read from the old cache"
for bad in '"pad": [0, -1]' '"pad": 1.5' '"pad": 1001' '"probe_c": [1, -2]' '"probe_c": 0' '"probe_c": []' '"init": "xavier"' '"cv_folds": 1' '"features_at": []' '"features_at": [1]'; do
  echo '{"backbone": "'"$T/cls"'", "data": "digits:path='"$DIGITS"'", '"$bad"'}' > "$T/bad3.json"
  "$G" study "$T/bad3.json" --out "$T/b3" > "$T/out" 2>&1
  [ $? -eq 1 ] && grep -q "bad3.json" "$T/out" || fail "bad config $bad: $(cat "$T/out")"
done
for f in "$T/cache"/*.grfc; do printf 'GRFCACHE' > "$f"; done # every source's file: which ones this config reads depends on the weights
"$G" study "$T/cv.json" --out "$T/cv3" --threads 1 > "$T/out" 2>&1
[ $? -eq 1 ] && grep -q "truncated" "$T/out" || fail "garbled cache: $(tail -3 "$T/out")"
echo '{"backbone": "'"$T/cls"'", "data": "digits:path='"$DIGITS"'", "methods": ["probe", "magic"]}' > "$T/bad.json"
"$G" study "$T/bad.json" --out "$T/b" > "$T/out" 2>&1
[ $? -eq 1 ] && grep -q "unknown backbone-study method" "$T/out" || fail "unknown method: $(cat "$T/out")"
echo '{"backbone": "'"$T/nodir"'", "data": "digits:path='"$DIGITS"'", "methods": ["probe"]}' > "$T/bad2.json"
"$G" study "$T/bad2.json" --out "$T/b2" > "$T/out" 2>&1
[ $? -eq 1 ] && grep -q "nodir" "$T/out" || fail "missing backbone dir: $(cat "$T/out")"
[ $fails -eq 0 ] && echo "cli_study_backbone: ok"
exit $fails
