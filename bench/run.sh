#!/usr/bin/env bash
# bench/run.sh — `make bench` / `make bench-quick`: graft against its PyTorch
# peers on the same work, side by side (see bench/driver.py).
# Usage: bench/run.sh BUILD_DIR [--quick] [--only gemm,mlp] [--threads 1,2] [--runs N] [--strict]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:?usage: bench/run.sh BUILD_DIR [--quick] [driver flags]}"
shift
exec /usr/bin/python3 "$here/driver.py" --build "$build" "$@"
