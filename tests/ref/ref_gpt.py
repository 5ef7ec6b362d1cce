"""Reference values for the GPT of graft/gpt.h (tests/test_gpt.c).

A PyTorch GPT-2 twin built from nn.Linear / nn.LayerNorm / nn.Embedding
(graft's [out,in] layout) with the same HF parameter names. Weights are
drawn here (numpy, fixed seed) and written with the outputs, so the C test
loads exactly these weights: logits, the LM loss and the gradient of every
parameter, for causal and prefix-LM attention; plus prefix_softmax op cases.
"""
import numpy as np
import torch
import torch.nn.functional as F

from reflib import torch_case, write_ref
from torch_models import gpt2_draw_params, gpt2_forward, prefix_lm_mask

torch.set_num_threads(1)
rng = np.random.default_rng(7)
V, BLOCK, L, H, C = 11, 8, 2, 2, 8


def lm_case(case, prefix):
    P = gpt2_draw_params(rng, V, BLOCK, L, C)
    B, T = 2, 7
    ids = torch.tensor(rng.integers(0, V, size=(B, T)))
    targets = torch.tensor(rng.integers(0, V, size=(B, T)))
    targets[:, :prefix] = -1
    logits = gpt2_forward(P, ids, L, H, lm_prefix=prefix)
    loss = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    arrays = {"ids": ids.float(), "targets": targets.float(), "logits": logits, "loss": loss.reshape(1),
              "prefix": torch.tensor([float(prefix)])}
    for k, v in P.items():
        arrays[k] = v
        arrays["d" + k] = v.grad
    write_ref(case, arrays)


lm_case("gpt_causal", 0)
lm_case("gpt_prefix", 3)


def masked_softmax(p):
    def f(x):
        T, S = x.shape[-2], x.shape[-1]
        return x.masked_fill(~prefix_lm_mask(T, S, p), float("-inf")).softmax(-1)
    return f


def r(*s):
    return rng.uniform(-2, 2, size=s).astype(np.float32)


for p in (0, 1, 3, 5):
    torch_case(f"prefix_softmax_p{p}", masked_softmax(p), {"x": r(2, 3, 5, 5)}, grad=["x"])
torch_case("prefix_softmax_kv_p2", masked_softmax(2), {"x": r(2, 3, 6)}, grad=["x"])
