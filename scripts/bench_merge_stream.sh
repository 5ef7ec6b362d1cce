#!/usr/bin/env bash
# scripts/bench_merge_stream.sh — streaming merge of two synthetic ~4 GiB
# models (NOT part of make test): peak RSS, throughput and the ratio to `cp`
# of the same input files. Needs ~25 GB free; deletes everything it wrote.
# usage: scripts/bench_merge_stream.sh BUILD_DIR [WORK_DIR] [GIB] [THREADS]
set -euo pipefail
build="${1:?usage: scripts/bench_merge_stream.sh BUILD_DIR [WORK_DIR] [GIB] [THREADS]}"
work="${2:-/work/tmp-merge-bench}"
gib="${3:-4}"
threads="${4:-2}"
here="$(cd "$(dirname "$0")" && pwd)"
graft="$build/graft"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
df -h "$work"
need=$(( (5 * ${gib%.*} + 6) * 1024 * 1024 ))  # KiB: 2 inputs + output + 2 copies + slack
avail=$(df -k --output=avail "$work" | tail -1)
if [ "$avail" -lt "$need" ]; then echo "not enough free disk: $avail KiB < $need KiB" >&2; exit 1; fi
/usr/bin/python3 "$here/gen_synthetic_model.py" "$work/A" "$gib" 1
/usr/bin/python3 "$here/gen_synthetic_model.py" "$work/B" "$gib" 2
bytes=$(( $(stat -c %s "$work/A/model.safetensors") + $(stat -c %s "$work/B/model.safetensors") ))
sync
# cp of the same two input files (and sync, as graft fsyncs its output)
t0=$(date +%s.%N)
cp "$work/A/model.safetensors" "$work/cpA" && cp "$work/B/model.safetensors" "$work/cpB" && sync
t1=$(date +%s.%N)
cp_s=$(echo "$t1 - $t0" | bc -l)
rm -f "$work/cpA" "$work/cpB"
echo "cp: $bytes bytes in $cp_s s"
for method in linear slerp ties; do
  case $method in
    linear) printf 'merge_method: linear\nmodels:\n  - model: A\n    parameters: {weight: 0.5}\n  - model: B\n    parameters: {weight: 0.5}\n' ;;
    slerp) printf 'merge_method: slerp\nbase_model: A\nmodels:\n  - model: A\n  - model: B\nparameters:\n  t: [0, 0.5, 1]\n' ;;
    ties) printf 'merge_method: ties\nbase_model: A\nmodels:\n  - model: B\n    parameters: {weight: 1.0, density: 0.5}\n' ;;
  esac > "$work/$method.yml"
  sync
  /usr/bin/time -v "$graft" merge "$work/$method.yml" --out "$work/out" --threads "$threads" --json \
    > "$work/$method.json" 2> "$work/$method.time"
  s=$(grep -o '"seconds":[0-9.]*' "$work/$method.json" | cut -d: -f2)
  rss_kb=$(grep "Maximum resident set size" "$work/$method.time" | awk '{print $NF}')
  wall=$(grep "Elapsed (wall clock)" "$work/$method.time" | awk '{print $NF}')
  echo "$method: $(cat "$work/$method.json")"
  echo "$method: process wall $wall, max RSS $((rss_kb / 1024)) MiB (time -v); read $(echo "$bytes / $s / 1000000000" | bc -l | cut -c1-5) GB/s; cp/graft time ratio $(echo "$cp_s / $s" | bc -l | cut -c1-5)"
  rm -rf "$work/out"
done
