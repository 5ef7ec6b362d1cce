"""Reference values for the fused multi-head self-attention
gr_causal_attention (tests/test_ops_attention.c): torch's split / view /
transpose / matmul / masked softmax / matmul / merge on qkv [B,T,3C]."""
import math

import numpy as np
import torch

from reflib import torch_case

rng = np.random.default_rng(11)


def attention(qkv, H, prefix):
    B, T, C3 = qkv.shape
    C = C3 // 3
    hd = C // H
    q, k, v = (t.reshape(B, T, H, hd).transpose(1, 2) for t in qkv.split(C, 2))
    att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    visible = (j <= i) | ((i < prefix) & (j < prefix))
    att = att.masked_fill(~visible, float("-inf")).softmax(-1)
    return (att @ v).transpose(1, 2).reshape(B, T, C)


# must match CASES in test_ops_attention.c: name, (B, T, C), heads, prefix, twice
CASES = [("causal", (2, 5, 12), 3, 0, False), ("prefix", (2, 6, 8), 2, 3, False),
         ("prefix_all", (1, 4, 8), 2, 4, False), ("one", (1, 1, 4), 1, 0, False),
         ("gpt", (2, 64, 32), 4, 0, False), ("accumulate", (2, 7, 12), 2, 0, True)]
for name, (B, T, C), H, prefix, twice in CASES:
    qkv = rng.uniform(-2, 2, size=(B, T, 3 * C)).astype(np.float32)
    if twice:  # a second use of qkv whose backward runs first: attention's grad accumulates
        fn = lambda qkv, H=H, prefix=prefix, C=C: attention(qkv, H, prefix) + qkv[..., :C]
    else:
        fn = lambda qkv, H=H, prefix=prefix: attention(qkv, H, prefix)
    torch_case(f"attention_{name}", fn, {"qkv": qkv}, grad=["qkv"])
