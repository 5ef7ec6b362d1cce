"""Reference values for ScaLearn (tests/test_peft_scalearn.c), written out in
torch after the paper's eq. (2) with graft's LoRA sources (graft/scalearn.h):
  y = base(x) + sum_i omega_i * s_i * B_i(A_i x)
omega_i broadcast over output features (per channel for a conv); uniform
omega is one scalar per source. Dropout is off (p = 0) so the reference is
deterministic. Arrays carry graft's parameter names; 'd<name>' is the
gradient of sum(y * gy); source factors are frozen (no gradient)."""
import numpy as np
import torch
import torch.nn.functional as F

from reflib import write_ref

rng = np.random.default_rng(9)
SCALING = [2.0, 1.5, 0.5]


def r(*s, scale=0.5):
    return (rng.uniform(-1, 1, size=s) * scale).astype(np.float32)


def combine(y, x, p, path, omega, conv, pad=0):
    for i, s in enumerate(SCALING):
        a, b = p["%s.lora_A.%d.weight" % (path, i)], p["%s.lora_B.%d.weight" % (path, i)]
        u = F.conv2d(F.conv2d(x, a, padding=pad), b) if conv else F.linear(F.linear(x, a), b)
        w = omega[i].view(-1, 1, 1) if conv else omega[i]
        y = y + s * u * w
    return y


def sources(a, path, fin, fout, rank=2, conv_k=None):
    for i in range(len(SCALING)):
        if conv_k:
            a["%s.lora_A.%d.weight" % (path, i)] = r(rank, fin, conv_k, conv_k)
            a["%s.lora_B.%d.weight" % (path, i)] = r(fout, rank, 1, 1)
        else:
            a["%s.lora_A.%d.weight" % (path, i)] = r(rank, fin)
            a["%s.lora_B.%d.weight" % (path, i)] = r(fout, rank)


def run_case(case, arrays, trainable, forward):
    t = {k: torch.tensor(v, requires_grad=k in trainable) for k, v in arrays.items()}
    y = forward(t)
    gy = torch.tensor(r(*y.shape, scale=1.0))
    y.backward(gy)
    out = dict(t)
    out["y"], out["gy"] = y, gy
    for k in trainable:
        out["d" + k] = t[k].grad
    write_ref(case, out)


def cnn_case():
    # 0 Conv2d(2,4,k3,pad1) -> 1 ReLU -> 2 Flatten -> 3 Linear(100,3); ScaLearn (vector) on 0 and 3
    a = {"x": r(2, 2, 5, 5, scale=1.0), "0.base_layer.weight": r(4, 2, 3, 3), "0.base_layer.bias": r(4),
         "3.base_layer.weight": r(3, 100, scale=0.2), "3.base_layer.bias": r(3),
         "0.scalearn_omega": r(3, 4, scale=1.5), "3.scalearn_omega": r(3, 3, scale=1.5)}
    sources(a, "0", 2, 4, conv_k=3)
    sources(a, "3", 100, 3)
    trainable = ["x", "0.base_layer.weight", "0.base_layer.bias", "3.base_layer.weight", "3.base_layer.bias",
                 "0.scalearn_omega", "3.scalearn_omega"]

    def fwd(p):
        h = F.conv2d(p["x"], p["0.base_layer.weight"], p["0.base_layer.bias"], padding=1)
        h = F.relu(combine(h, p["x"], p, "0", p["0.scalearn_omega"], True, pad=1)).flatten(1)
        y = F.linear(h, p["3.base_layer.weight"], p["3.base_layer.bias"])
        return combine(y, h, p, "3", p["3.scalearn_omega"], False)
    run_case("scalearn_cnn", a, trainable, fwd)


def mlp_shared_case():
    # layers.0 Linear(6,8) -> ReLU -> layers.2 Linear(8,5); ScaLearnUniform++: one omega [3,1] for both
    a = {"x": r(4, 6, scale=1.0), "layers.0.base_layer.weight": r(8, 6), "layers.0.base_layer.bias": r(8),
         "layers.2.base_layer.weight": r(5, 8), "layers.2.base_layer.bias": r(5),
         "layers.0.scalearn_omega": r(3, 1, scale=1.5)}
    sources(a, "layers.0", 6, 8)
    sources(a, "layers.2", 8, 5)
    trainable = ["x", "layers.0.scalearn_omega", "layers.0.base_layer.weight", "layers.2.base_layer.weight"]

    def fwd(p):
        om = p["layers.0.scalearn_omega"]
        h = F.linear(p["x"], p["layers.0.base_layer.weight"], p["layers.0.base_layer.bias"])
        h = F.relu(combine(h, p["x"], p, "layers.0", om, False))
        y = F.linear(h, p["layers.2.base_layer.weight"], p["layers.2.base_layer.bias"])
        return combine(y, h, p, "layers.2", om, False)
    run_case("scalearn_mlp_shared", a, trainable, fwd)


cnn_case()
mlp_shared_case()
