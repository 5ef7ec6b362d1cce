"""Reference values for the GPT of graft/gpt.h (tests/test_gpt.c).

A PyTorch GPT-2 twin built from nn.Linear / nn.LayerNorm / nn.Embedding
(graft's [out,in] layout) with the same HF parameter names. Weights are
drawn here (numpy, fixed seed) and written with the outputs, so the C test
loads exactly these weights: logits, the LM loss and the gradient of every
parameter, for causal and prefix-LM attention; plus prefix_softmax op cases.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from reflib import torch_case, write_ref

torch.set_num_threads(1)
rng = np.random.default_rng(7)
V, BLOCK, L, H, C = 11, 8, 2, 2, 8


def param_shapes():
    s = {"transformer.wte.weight": (V, C), "transformer.wpe.weight": (BLOCK, C)}
    for l in range(L):
        p = f"transformer.h.{l}."
        s[p + "ln_1.weight"] = (C,); s[p + "ln_1.bias"] = (C,)
        s[p + "attn.c_attn.weight"] = (3 * C, C); s[p + "attn.c_attn.bias"] = (3 * C,)
        s[p + "attn.c_proj.weight"] = (C, C); s[p + "attn.c_proj.bias"] = (C,)
        s[p + "ln_2.weight"] = (C,); s[p + "ln_2.bias"] = (C,)
        s[p + "mlp.c_fc.weight"] = (4 * C, C); s[p + "mlp.c_fc.bias"] = (4 * C,)
        s[p + "mlp.c_proj.weight"] = (C, 4 * C); s[p + "mlp.c_proj.bias"] = (C,)
    s["transformer.ln_f.weight"] = (C,); s["transformer.ln_f.bias"] = (C,)
    return s


def prefix_mask(T, S, p):
    q = torch.arange(S - T, S).unsqueeze(1)
    j = torch.arange(S).unsqueeze(0)
    return (j <= q) | ((q < p) & (j < p))


def gpt_forward(P, ids, prefix):
    B, T = ids.shape
    x = P["transformer.wte.weight"][ids] + P["transformer.wpe.weight"][:T]
    mask = prefix_mask(T, T, prefix)
    for l in range(L):
        p = f"transformer.h.{l}."
        h = F.layer_norm(x, (C,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], 1e-5)
        qkv = F.linear(h, P[p + "attn.c_attn.weight"], P[p + "attn.c_attn.bias"])
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in qkv.split(C, dim=2))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + F.linear(y, P[p + "attn.c_proj.weight"], P[p + "attn.c_proj.bias"])
        h = F.layer_norm(x, (C,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], 1e-5)
        h = F.gelu(F.linear(h, P[p + "mlp.c_fc.weight"], P[p + "mlp.c_fc.bias"]), approximate="tanh")
        x = x + F.linear(h, P[p + "mlp.c_proj.weight"], P[p + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (C,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], 1e-5)
    return x @ P["transformer.wte.weight"].t()


def draw_params():
    P = {}
    for name, shape in param_shapes().items():
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
            a = 1 + 0.2 * rng.standard_normal(shape)
        else:
            a = 0.3 * rng.standard_normal(shape)
        P[name] = torch.tensor(a.astype(np.float32), requires_grad=True)
    return P


def lm_case(case, prefix):
    P = draw_params()
    B, T = 2, 7
    ids = torch.tensor(rng.integers(0, V, size=(B, T)))
    targets = torch.tensor(rng.integers(0, V, size=(B, T)))
    targets[:, :prefix] = -1
    logits = gpt_forward(P, ids, prefix)
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
        return x.masked_fill(~prefix_mask(T, S, p), float("-inf")).softmax(-1)
    return f


def r(*s):
    return rng.uniform(-2, 2, size=s).astype(np.float32)


for p in (0, 1, 3, 5):
    torch_case(f"prefix_softmax_p{p}", masked_softmax(p), {"x": r(2, 3, 5, 5)}, grad=["x"])
torch_case("prefix_softmax_kv_p2", masked_softmax(2), {"x": r(2, 3, 6)}, grad=["x"])
