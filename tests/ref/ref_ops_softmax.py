"""Reference values for softmax and log_softmax over any axis
(tests/test_ops_softmax.c). Case names: <op>_<shape>_a<axis>."""
import numpy as np
import torch

from reflib import torch_case

rng = np.random.default_rng(4)


def sample(name, shape):
    x = rng.uniform(-3, 3, size=shape).astype(np.float32)
    if name == "extreme":  # stability: huge logits, and a row of equal values
        x[0] = [100.0, -100.0, 88.0, 90.0, 0.0]
        x[1] = 1000.0
        x[2] = -1000.0
    return x


# must match SHAPES/AXES in test_ops_softmax.c
SHAPES = {"cube": (3, 4, 5), "one": (1,), "rows": (4, 7), "empty": (2, 0, 3), "extreme": (3, 5), "big": (200, 300)}
AXES = [0, 1, -1]
for op in ("softmax", "log_softmax"):
    for name, shape in SHAPES.items():
        for axis in AXES:
            if not -len(shape) <= axis < len(shape):
                continue
            fn = (lambda x, op=op, axis=axis: getattr(torch, op)(x, dim=axis))
            torch_case(f"{op}_{name}_a{axis}", fn, {"x": sample(name, shape)}, grad=["x"])
