"""Writes a large synthetic model directory (model.safetensors, F32, dense
random normal data: no sparsity, nothing compressible) one tensor at a time,
so generating it needs memory for one tensor only. For the streaming-merge
benchmark (scripts/bench_merge_stream.sh); not part of `make test`.
usage: gen_synthetic_model.py OUT_DIR GIB SEED [--hidden 4096]"""
import argparse
import json
import os
import struct

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("gib", type=float)
ap.add_argument("seed", type=int)
ap.add_argument("--hidden", type=int, default=4096)
a = ap.parse_args()

h = a.hidden
per_layer = [("self_attn.q_proj.weight", (h, h)), ("self_attn.k_proj.weight", (h // 4, h)),
             ("self_attn.v_proj.weight", (h // 4, h)), ("self_attn.o_proj.weight", (h, h)),
             ("mlp.up_proj.weight", (h, h)), ("mlp.down_proj.weight", (h, h)),
             ("input_layernorm.weight", (h,)), ("post_attention_layernorm.weight", (h,))]
layer_bytes = sum(4 * int(np.prod(s)) for _, s in per_layer)
n_layers = max(1, int(round(a.gib * 2**30 / layer_bytes)))
shapes = [("model.norm.weight", (h,))]
for i in range(n_layers):
    shapes += [(f"model.layers.{i}.{n}", s) for n, s in per_layer]
shapes.sort(key=lambda x: x[0])  # all F32: the reference writer orders by name
header, off = {"__metadata__": {"format": "pt"}}, 0
for name, s in shapes:
    nb = 4 * int(np.prod(s))
    header[name] = {"dtype": "F32", "shape": list(s), "data_offsets": [off, off + nb]}
    off += nb
hb = json.dumps(header, separators=(",", ":")).encode()
hb += b" " * ((8 - len(hb) % 8) % 8)
os.makedirs(a.out, exist_ok=True)
path = os.path.join(a.out, "model.safetensors")
rng = np.random.default_rng(a.seed)
with open(path + ".tmp", "wb") as f:
    f.write(struct.pack("<Q", len(hb)) + hb)
    for name, s in shapes:
        x = rng.standard_normal(s, dtype=np.float32) * np.float32(0.02)
        f.write(x.astype("<f4").tobytes())
os.replace(path + ".tmp", path)
print(f"{path}: {n_layers} layers, {len(shapes)} tensors, {off / 1e9:.3f} GB of tensor data")
