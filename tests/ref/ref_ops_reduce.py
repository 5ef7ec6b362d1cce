"""Reference values for sum and mean over one axis or all (tests/test_ops_reduce.c).
Case names: <op>_<shape>_a<axis|all>_k<keepdim>; combinations whose axis is
out of range, and means over zero elements (graft: GR_ESHAPE, torch: NaN),
are not written."""
import numpy as np
import torch

from reflib import torch_case

rng = np.random.default_rng(3)

# must match SHAPES/AXES in test_ops_reduce.c
SHAPES = {"cube": (3, 4, 5), "one": (1,), "scalar": (), "empty": (2, 0, 3), "big": (300, 200), "long": (70000,)}
AXES = [0, 1, -1, "all"]

for op in ("sum", "mean"):
    for name, shape in SHAPES.items():
        for axis in AXES:
            if axis != "all" and not -len(shape) <= axis < len(shape):
                continue
            count = int(np.prod(shape)) if axis == "all" else shape[axis]
            if op == "mean" and count == 0:
                continue
            for keep in (0, 1):
                x = rng.uniform(-1, 1, size=shape).astype(np.float32)
                if axis == "all":
                    def fn(x, op=op, keep=keep):
                        y = getattr(torch, op)(x)
                        return y.reshape([1] * x.dim()) if keep else y
                else:
                    def fn(x, op=op, axis=axis, keep=keep):
                        return getattr(torch, op)(x, dim=axis, keepdim=bool(keep))
                torch_case(f"{op}_{name}_a{axis}_k{keep}", fn, {"x": x}, grad=["x"])
