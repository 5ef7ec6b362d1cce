"""Reference values for PEFT on the GPT (tests/test_gpt_peft.c): prefix
tuning (direct and reparametrized through PEFT's prefix_projection MLP,
causal and prefix-LM) and LoRA on c_attn/c_proj/c_fc, on the functional
PyTorch twin of tests/ref/torch_models.py. The base weights are frozen
(requires_grad False); only the PEFT parameters get gradients. Every tensor
is written, so the C test loads exactly these weights."""
import numpy as np
import torch
import torch.nn.functional as F

from reflib import write_ref
from torch_models import gpt2_draw_params, gpt2_forward

torch.set_num_threads(1)
rng = np.random.default_rng(11)
V, BLOCK, L, H, C = 11, 8, 2, 2, 8
B, T = 2, 7


def leaf(*shape, std=1.0):
    return torch.tensor((std * rng.standard_normal(shape)).astype(np.float32), requires_grad=True)


def batch(lm_prefix):
    ids = torch.tensor(rng.integers(0, V, size=(B, T)))
    targets = torch.tensor(rng.integers(0, V, size=(B, T)))
    targets[:, :lm_prefix] = -1
    return ids, targets


def write_case(case, P, train, logits, targets, lm_prefix, extra):
    loss = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    arrays = {"targets": targets.float(), "logits": logits, "loss": loss.reshape(1),
              "prefix": torch.tensor([float(lm_prefix)])}
    arrays.update(extra)
    for k, v in P.items():
        arrays[k] = v
    for k, v in train.items():
        arrays[k] = v
        arrays["d" + k] = v.grad
    write_ref(case, arrays)


def base_params():
    P = gpt2_draw_params(rng, V, BLOCK, L, C)
    for v in P.values():
        v.requires_grad_(False)
    return P


def prefix_case(case, l, hidden, lm_prefix):
    P = base_params()
    ids, targets = batch(lm_prefix)
    width = L * 2 * C
    if hidden:
        train = {"prompt_encoder.embedding.weight": leaf(l, C),
                 "prompt_encoder.transform.0.weight": leaf(hidden, C, std=0.4),
                 "prompt_encoder.transform.0.bias": leaf(hidden, std=0.1),
                 "prompt_encoder.transform.2.weight": leaf(width, hidden, std=0.4),
                 "prompt_encoder.transform.2.bias": leaf(width, std=0.1)}
        h = torch.tanh(F.linear(train["prompt_encoder.embedding.weight"], train["prompt_encoder.transform.0.weight"],
                                train["prompt_encoder.transform.0.bias"]))
        table = F.linear(h, train["prompt_encoder.transform.2.weight"], train["prompt_encoder.transform.2.bias"])
    else:
        train = {"prompt_encoder.embedding.weight": leaf(l, width)}
        table = train["prompt_encoder.embedding.weight"]
    logits = gpt2_forward(P, ids, L, H, lm_prefix=lm_prefix, prefix_kv=table)
    base = gpt2_forward(P, ids, L, H, lm_prefix=lm_prefix)
    write_case(case, P, train, logits, targets, lm_prefix, {"ids": ids.float(), "base_logits": base})


def lora_case(case, r, alpha):
    P = base_params()
    ids, targets = batch(0)
    train = {}
    for name in list(P):
        mod = name[: -len(".weight")]
        if name.endswith(".weight") and mod.split(".")[-1] in ("c_attn", "c_proj", "c_fc"):
            out_f, in_f = P[name].shape
            P[mod + ".base_layer.weight"] = P.pop(name)
            P[mod + ".base_layer.bias"] = P.pop(mod + ".bias")
            train[mod + ".lora_A.weight"] = leaf(r, in_f, std=0.3)
            train[mod + ".lora_B.weight"] = leaf(out_f, r, std=0.3)
    logits = gpt2_forward({**P, **train}, ids, L, H, lora={"scaling": alpha / r})
    write_case(case, P, train, logits, targets, 0, {"ids": ids.float()})


prefix_case("gpt_prefix_direct", l=3, hidden=0, lm_prefix=0)
prefix_case("gpt_prefix_mlp", l=2, hidden=6, lm_prefix=3)
lora_case("gpt_lora", r=2, alpha=4.0)


def mam_case(case, l, r, scale):
    """MAM: direct prefix of l positions + scaled parallel adapters (random
    up, so the adapter path carries gradient signal) on every FFN."""
    P = base_params()
    for name in list(P):
        if ".mlp." in name:
            P[name.replace(".mlp.", ".mlp.base_layer.")] = P.pop(name)
    ids, targets = batch(0)
    train = {"prompt_encoder.embedding.weight": leaf(l, L * 2 * C)}
    for i in range(L):
        p = f"transformer.h.{i}.mlp."
        train[p + "adapter_down.weight"] = leaf(r, C, std=0.3)
        train[p + "adapter_down.bias"] = leaf(r, std=0.1)
        train[p + "adapter_up.weight"] = leaf(C, r, std=0.3)
        train[p + "adapter_up.bias"] = leaf(C, std=0.1)
    logits = gpt2_forward({**P, **train}, ids, L, H, prefix_kv=train["prompt_encoder.embedding.weight"],
                          ffn_adapter={"scale": scale})
    write_case(case, P, train, logits, targets, 0, {"ids": ids.float()})


mam_case("gpt_mam", l=2, r=3, scale=4.0)
