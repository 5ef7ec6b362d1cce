"""Reference values for batch_norm and layer_norm (tests/test_ops_norm.c)."""
import numpy as np
import torch
import torch.nn.functional as F

from reflib import torch_case, write_ref

rng = np.random.default_rng(2)


def r(*s, lo=-1, hi=1):
    return rng.uniform(lo, hi, size=s).astype(np.float32)


# Training mode: 3 calls update the running stats; the third call's output,
# gradients and the running stats after it are compared.
# bn_train_wide: planes of 99 (full 32-lane blocks and a tail); bn_train_chunk:
# planes of 2100 (more than one 2048-value chunk).
for name, shape in (("bn_train_4d", (4, 3, 5, 6)), ("bn_train_2d", (8, 5)), ("bn_train_edge", (2, 1, 1, 1)),
                    ("bn_train_wide", (3, 4, 9, 11)), ("bn_train_chunk", (2, 2, 42, 50))):
    C = shape[1]
    xs = [r(*shape) * (k + 1) + k for k in range(3)]
    g, b = r(C, lo=0.5, hi=1.5), r(C)
    rm, rv = torch.zeros(C), torch.ones(C)
    for k in range(2):
        F.batch_norm(torch.from_numpy(xs[k]), rm, rv, None, None, training=True, momentum=0.1, eps=1e-5)
    write_ref(name + "_pre", {"x0": xs[0], "x1": xs[1]})
    rm_in, rv_in = rm.clone(), rv.clone()

    def bn(x, gamma, beta, rm=rm, rv=rv):
        return F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)

    torch_case(name, bn, {"x": xs[2], "gamma": g, "beta": b}, grad=["x", "gamma", "beta"],
               extra={"rm_before": rm_in, "rv_before": rv_in, "rm_after": rm, "rv_after": rv})

rm, rv = torch.from_numpy(r(3)), torch.from_numpy(r(3, lo=0.5, hi=2))
torch_case("bn_eval", lambda x, gamma, beta: F.batch_norm(x, rm, rv, gamma, beta, training=False, eps=1e-5),
           {"x": r(2, 3, 4, 4), "gamma": r(3), "beta": r(3)}, grad=["x", "gamma", "beta"],
           extra={"rm": rm, "rv": rv})
torch_case("bn_noaffine", lambda x: F.batch_norm(x, None, None, None, None, training=True, eps=1e-5),
           {"x": r(6, 2, 3)}, grad=["x"])

for name, shape in (("ln_3d", (2, 3, 8)), ("ln_2d", (5, 16)), ("ln_edge", (1, 1))):
    D = shape[-1]
    torch_case(name, lambda x, gamma, beta: F.layer_norm(x, (x.shape[-1],), gamma, beta, eps=1e-5),
               {"x": r(*shape) * 3 + 1, "gamma": r(D), "beta": r(D)}, grad=["x", "gamma", "beta"])
torch_case("ln_noaffine", lambda x: F.layer_norm(x, (x.shape[-1],), eps=1e-5), {"x": r(3, 7)}, grad=["x"])

# batch_norm_relu: relu(batch_norm(x) + residual), training (batch stats) and
# eval (running stats), with and without the residual
for name, shape, res in (("bnr_train_res", (4, 3, 5, 6), True), ("bnr_train", (3, 2, 4, 4), False),
                         ("bnr_train_res_chunk", (2, 3, 42, 50), True)):
    C = shape[1]

    def bnr(x, gamma, beta, residual=None):
        y = F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)
        return F.relu(y + residual if residual is not None else y)

    inputs = {"x": r(*shape) * 2 + 0.5, "gamma": r(C, lo=0.5, hi=1.5), "beta": r(C)}
    if res:
        inputs["residual"] = r(*shape)
    torch_case(name, bnr, inputs, grad=list(inputs))
rm, rv = torch.from_numpy(r(3)), torch.from_numpy(r(3, lo=0.5, hi=2))
torch_case("bnr_eval_res",
           lambda x, gamma, beta, residual: F.relu(F.batch_norm(x, rm, rv, gamma, beta, training=False, eps=1e-5)
                                                   + residual),
           {"x": r(2, 3, 4, 4), "gamma": r(3), "beta": r(3), "residual": r(2, 3, 4, 4)},
           grad=["x", "gamma", "beta", "residual"], extra={"rm": rm, "rv": rv})
