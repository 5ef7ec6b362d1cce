"""Reference values for add/sub/mul/div (broadcasting), scale, add_scalar
(tests/test_ops_binary.c). Case names: <op>_<shapes>."""
import numpy as np
import torch

from reflib import torch_case

rng = np.random.default_rng(1)


def r(*s):
    return rng.uniform(-1, 1, size=s).astype(np.float32)


def away_from_zero(*s):  # divisors: |b| in [0.5, 1.5)
    return (rng.uniform(0.5, 1.5, size=s) * rng.choice([-1, 1], size=s)).astype(np.float32)


# name -> (shape of a, shape of b); must match SHAPES in test_ops_binary.c
SHAPES = {
    "same": ((3, 4), (3, 4)),
    "row": ((4, 5), (5,)),
    "chan": ((2, 3, 4, 5), (3, 1, 1)),
    "scalar0": ((2, 3), ()),
    "scalar1": ((1,), (4, 2)),
    "outer": ((3, 1), (1, 4)),
    "lead": ((2, 1, 4), (3, 1)),
    "ones": ((1, 1), (1,)),
    "empty": ((0, 3), (3,)),
    "big": ((40, 1000), (1000,)),
    "bigchan": ((2, 8, 64, 64), (8, 1, 1)),
}
OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
for op, fn in OPS.items():
    for name, (sa, sb) in SHAPES.items():
        a = r(*sa)
        b = away_from_zero(*sb) if op == "div" else r(*sb)
        torch_case(f"{op}_{name}", fn, {"a": a, "b": b}, grad=["a", "b"])

torch_case("scale", lambda x: torch.mul(x, -1.75), {"x": r(3, 5)}, grad=["x"])
torch_case("add_scalar", lambda x: torch.add(x, 0.625), {"x": r(2, 1, 3)}, grad=["x"])
torch_case("scale_big", lambda x: torch.mul(x, 3.0), {"x": r(50, 1000)}, grad=["x"])
