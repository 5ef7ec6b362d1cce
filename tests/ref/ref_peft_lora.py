"""Reference values for LoRA / rsLoRA (tests/test_peft_lora.c).

Hugging Face PEFT cannot be installed here, so its LoRA math is written out in
torch following FORMATS.md §2.3 (peft/tuners/lora/layer.py):
  Linear: y = W x + b + scaling * B (A x)
  Conv2d: y = conv(x, W, b) + scaling * conv1x1(conv_kxk(x, A), B)  (A with the
          base conv's stride/padding, B [out, r, 1, 1])
  scaling = alpha / r, or alpha / sqrt(r) with use_rslora
  merge:  W' = W + scaling * (B @ A), transposed when fan_in_fan_out.
Arrays are named after graft's parameters (<path>.base_layer.weight,
<path>.lora_A.weight, ...) so the C test loads and compares them by name;
'd<name>' is the gradient of sum(y * gy)."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from reflib import write_ref

rng = np.random.default_rng(5)


def r(*s, scale=0.5):
    return (rng.uniform(-1, 1, size=s) * scale).astype(np.float32)


def scaling(alpha, rank, rslora):
    return alpha / math.sqrt(rank) if rslora else alpha / rank


def lora_linear(x, p, path, s):
    base = F.linear(x, p[path + ".base_layer.weight"], p[path + ".base_layer.bias"])
    return base + s * F.linear(F.linear(x, p[path + ".lora_A.weight"]), p[path + ".lora_B.weight"])


def lora_conv(x, p, path, s, pad):
    base = F.conv2d(x, p[path + ".base_layer.weight"], p[path + ".base_layer.bias"], padding=pad)
    h = F.conv2d(x, p[path + ".lora_A.weight"], padding=pad)
    return base + s * F.conv2d(h, p[path + ".lora_B.weight"])


def run_case(case, arrays, forward):
    """arrays: name -> numpy; every array but x is a parameter with a grad."""
    t = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    y = forward(t)
    gy = torch.tensor(r(*y.shape, scale=1.0))
    y.backward(gy)
    out = {k: v for k, v in t.items()}
    out["y"] = y
    out["gy"] = gy
    for k, v in t.items():
        out["d" + k] = v.grad
    write_ref(case, out)


def mlp_case(case, r0, r1, alpha, rslora):
    # layers.0 Linear(6,8) + ReLU + layers.2 Linear(8,5), LoRA on both
    a = {"x": r(4, 6, scale=1.0)}
    for path, fin, fout, rank in (("layers.0", 6, 8, r0), ("layers.2", 8, 5, r1)):
        a[path + ".base_layer.weight"] = r(fout, fin)
        a[path + ".base_layer.bias"] = r(fout)
        a[path + ".lora_A.weight"] = r(rank, fin)
        a[path + ".lora_B.weight"] = r(fout, rank)
    s0, s1 = scaling(alpha, r0, rslora), scaling(alpha, r1, rslora)
    run_case(case, a, lambda p: lora_linear(F.relu(lora_linear(p["x"], p, "layers.0", s0)), p, "layers.2", s1))


def cnn_case(case, rank, alpha, rslora):
    # 0 Conv2d(2,4,k3,pad1) + 1 ReLU + 2 Flatten + 3 Linear(4*5*5, 3), LoRA on 0 and 3
    a = {"x": r(2, 2, 5, 5, scale=1.0),
         "0.base_layer.weight": r(4, 2, 3, 3), "0.base_layer.bias": r(4),
         "0.lora_A.weight": r(rank, 2, 3, 3), "0.lora_B.weight": r(4, rank, 1, 1),
         "3.base_layer.weight": r(3, 100, scale=0.2), "3.base_layer.bias": r(3),
         "3.lora_A.weight": r(rank, 100, scale=0.2), "3.lora_B.weight": r(3, rank)}
    s = scaling(alpha, rank, rslora)

    def fwd(p):
        h = F.relu(lora_conv(p["x"], p, "0", s, 1)).flatten(1)
        return lora_linear(h, p, "3", s)
    run_case(case, a, fwd)


mlp_case("lora_mlp", 2, 3, 4.0, False)
mlp_case("rslora_mlp", 2, 3, 4.0, True)
cnn_case("lora_cnn", 2, 8.0, False)
cnn_case("rslora_cnn", 3, 8.0, True)

# merge rule on raw arrays, both layouts: W' = W + s (B @ A) (fan_in_fan_out: transposed)
A, B, W, Wt = r(3, 7), r(5, 3), r(5, 7), r(7, 5)
write_ref("lora_delta", {"a": A, "b": B, "w": W, "wt": Wt,
                         "merged": W + 1.5 * (B @ A), "merged_fifo": Wt + 1.5 * (B @ A).T})
