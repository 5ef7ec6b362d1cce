"""Reference values for cross_entropy, mse and kl_div (tests/test_ops_loss.c).
Options travel in the file as inputs: ls (label smoothing), ignore
(ignore_index) and logt (log_target)."""
import numpy as np
import torch
import torch.nn.functional as F

from reflib import torch_case

rng = np.random.default_rng(5)


def r(*s, scale=1.0):
    return (rng.uniform(-1, 1, size=s) * scale).astype(np.float32)


def ce(logits, target, ls, ignore):
    return F.cross_entropy(logits, target.long(), label_smoothing=float(ls), ignore_index=int(ignore))


def ce_case(name, n, c, ls=0.0, ignore=-100, ignored_rows=(), scale=3.0, targets=None):
    t = rng.integers(0, c, size=n) if targets is None else np.array(targets)
    for i in ignored_rows:
        t[i] = ignore
    inputs = {"logits": r(n, c, scale=scale), "target": t.astype(np.float32),
              "ls": np.float32(ls), "ignore": np.float32(ignore)}
    torch_case(name, ce, inputs, grad=["logits"])


# must match the names in test_ops_loss.c
ce_case("ce_plain", 6, 5)
ce_case("ce_smooth", 6, 5, ls=0.1)
ce_case("ce_ignore", 6, 5, ignored_rows=(1, 4))
ce_case("ce_ignore_smooth", 7, 4, ls=0.2, ignored_rows=(0, 5))
ce_case("ce_ignore_class", 6, 4, ignore=2, targets=[2, 0, 2, 3, 1, 2])
ce_case("ce_one", 1, 1, ls=0.3)
ce_case("ce_wide", 5, 6, scale=50.0)
ce_case("ce_big", 64, 1000)


def mse(pred, target):
    return F.mse_loss(pred, target)


torch_case("mse_small", mse, {"pred": r(3, 4), "target": r(3, 4)}, grad=["pred", "target"])
torch_case("mse_one", mse, {"pred": r(1), "target": r(1)}, grad=["pred", "target"])
torch_case("mse_big", mse, {"pred": r(200, 300), "target": r(200, 300)}, grad=["pred", "target"])


def kl(input, target, logt):
    return F.kl_div(input, target, reduction="batchmean", log_target=bool(logt))


def logp(*s):
    return torch.log_softmax(torch.as_tensor(r(*s, scale=2.0)), dim=-1).numpy()


def prob(*s):
    return torch.softmax(torch.as_tensor(r(*s, scale=2.0)), dim=-1).numpy()


torch_case("kl_prob", kl, {"input": logp(4, 5), "target": prob(4, 5), "logt": np.float32(0)},
           grad=["input", "target"])
torch_case("kl_logt", kl, {"input": logp(4, 5), "target": logp(4, 5), "logt": np.float32(1)},
           grad=["input", "target"])
zero = prob(3, 4)
zero[0, 1] = zero[2, 3] = 0.0  # t = 0 terms contribute 0 (target grad not compared there)
torch_case("kl_zero", kl, {"input": logp(3, 4), "target": zero, "logt": np.float32(0)}, grad=["input"])
torch_case("kl_1d", kl, {"input": logp(6), "target": prob(6), "logt": np.float32(0)}, grad=["input", "target"])
