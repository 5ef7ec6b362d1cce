"""Reference for tests/test_onnx_module.c: a small imported-graph model
directory (config.json + model.safetensors, written here as `graft import`
writes them) and its forward/backward in PyTorch: bilinear resize
(align_corners=False) from 5x7 to 6x6, one channel repeated to two,
x*2-1, Conv(pad 1) + bias, BatchNormalization (eval), Relu,
GlobalAveragePool, Flatten, Gemm(transB)."""
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

from reflib import out_dir, write_ref

rng = np.random.default_rng(7)


def r(*s, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=s).astype(np.float32)


W = {
    "conv.weight": r(4, 2, 3, 3), "conv.bias": r(4),
    "bn.weight": r(4, lo=0.5, hi=1.5), "bn.bias": r(4),
    "bn.running_mean": r(4), "bn.running_var": r(4, lo=0.5, hi=2.0),
    "fc.weight": r(3, 4), "fc.bias": r(3),
}


def write_safetensors(path, tensors):
    header, off, blobs = {}, 0, []
    for name, a in tensors.items():
        b = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def node(op, name, ins, outs, **attrs):
    return {"op": op, "name": name, "inputs": ins, "outputs": outs, "attrs": attrs}


graph = {
    "opset": 13, "producer": "ref_onnx_module.py",
    "inputs": [{"name": "x", "dtype": "FLOAT", "shape": [-1, 2, 6, 6]}],
    "outputs": [{"name": "y", "dtype": "FLOAT", "shape": [-1, 3]}],
    "nodes": [
        node("Conv", "conv", ["x", "conv.weight", "conv.bias"], ["conv_out"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        node("BatchNormalization", "bn", ["conv_out", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
             ["bn_out"], epsilon=1e-5, momentum=0.9),
        node("Relu", "relu", ["bn_out"], ["relu_out"]),
        node("GlobalAveragePool", "gap", ["relu_out"], ["gap_out"]),
        node("Flatten", "flat", ["gap_out"], ["flat_out"], axis=1),
        node("Gemm", "fc", ["flat_out", "fc.weight", "fc.bias"], ["y"], transB=1),
    ],
}
d = os.path.join(out_dir(), "onnx_module_dir")
os.makedirs(d, exist_ok=True)
cfg = {"architecture": "onnx_graph", "framework": "graft", "in_channels": 2, "height": 6, "width": 6,
       "num_classes": 3, "input_scale": 2.0, "input_shift": -1.0, "graph": graph}
with open(os.path.join(d, "config.json"), "w") as f:
    json.dump(cfg, f, indent=1)
write_safetensors(os.path.join(d, "model.safetensors"), W)

x = torch.tensor(r(2, 1, 5, 7, lo=0.0, hi=1.0), requires_grad=True)
t = {k: torch.tensor(v, requires_grad=not k.endswith(("running_mean", "running_var"))) for k, v in W.items()}
h = F.interpolate(x, size=(6, 6), mode="bilinear", align_corners=False).repeat(1, 2, 1, 1) * 2 - 1
h = F.conv2d(h, t["conv.weight"], t["conv.bias"], padding=1)
h = F.batch_norm(h, t["bn.running_mean"], t["bn.running_var"], t["bn.weight"], t["bn.bias"], False, 0.1, 1e-5)
feat = F.relu(h).mean(dim=(2, 3))
y = F.linear(feat, t["fc.weight"], t["fc.bias"])
gy = torch.tensor(r(2, 3))
y.backward(gy)
out = {"x": x, "y": y, "gy": gy, "feat": feat, "dx": x.grad}
for k in ("conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias"):
    out["d" + k] = t[k].grad
write_ref("onnx_module", out)

# Batch-norm recalibration (gr_onnx_module_recalibrate_bn, batches of 3 of 7
# images): the average over batches of the batch mean and unbiased batch
# variance of the BN input, as PyTorch's cumulative average (momentum=None).
xr = torch.tensor(r(7, 1, 5, 7, lo=0.0, hi=1.0))
with torch.no_grad():
    bn = torch.nn.BatchNorm2d(4, eps=1e-5, momentum=None)
    for i in range(0, 7, 3):
        h = F.interpolate(xr[i:i + 3], size=(6, 6), mode="bilinear", align_corners=False).repeat(1, 2, 1, 1) * 2 - 1
        bn(F.conv2d(h, torch.tensor(W["conv.weight"]), torch.tensor(W["conv.bias"]), padding=1))
write_ref("onnx_module_recal", {"x": xr, "mean": bn.running_mean, "var": bn.running_var})
