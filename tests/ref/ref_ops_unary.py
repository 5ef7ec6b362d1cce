"""Reference values for exp, log, sqrt, pow, relu, gelu (tanh), tanh, sigmoid
(tests/test_ops_unary.c). Case names: <op>_<shape>."""
import numpy as np
import torch

from reflib import torch_case

rng = np.random.default_rng(2)

# name -> shape; must match SHAPES in test_ops_unary.c
SHAPES = {"small": (3, 4), "one": (1,), "scalar": (), "empty": (2, 0, 3), "big": (40000,)}


def sample(dom, shape):
    if dom == "pos":  # log, sqrt, fractional powers
        return rng.uniform(0.2, 2.0, size=shape).astype(np.float32)
    if dom == "nokink":  # relu: |x| >= 0.05, away from the kink at 0
        mag = rng.uniform(0.05, 2.0, size=shape)
        return (mag * rng.choice([-1, 1], size=shape)).astype(np.float32)
    if dom == "wide":  # saturating maps, incl. large |x|
        x = rng.uniform(-4, 4, size=shape)
        if x.size >= 4:
            x.flat[:2] = [-20.0, 20.0]
        return x.astype(np.float32)
    return rng.uniform(-2, 2, size=shape).astype(np.float32)


# name -> (torch fn, input domain); must match OPS in test_ops_unary.c
OPS = {
    "exp": (torch.exp, "any"),
    "log": (torch.log, "pos"),
    "sqrt": (torch.sqrt, "pos"),
    "pow2": (lambda x: torch.pow(x, 2.0), "any"),
    "pow3": (lambda x: torch.pow(x, 3.0), "any"),
    "powhalf": (lambda x: torch.pow(x, 0.5), "pos"),
    "powm1p5": (lambda x: torch.pow(x, -1.5), "pos"),
    "pow0": (lambda x: torch.pow(x, 0.0), "any"),
    "relu": (torch.relu, "nokink"),
    "gelu": (lambda x: torch.nn.functional.gelu(x, approximate="tanh"), "wide"),
    "tanh": (torch.tanh, "wide"),
    "sigmoid": (torch.sigmoid, "wide"),
}
for op, (fn, dom) in OPS.items():
    for name, shape in SHAPES.items():
        torch_case(f"{op}_{name}", fn, {"x": sample(dom, shape)}, grad=["x"])
