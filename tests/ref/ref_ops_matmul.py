"""Reference values for matmul and linear (tests/test_ops_matmul.c)."""
import numpy as np
import torch

from reflib import torch_case

rng = np.random.default_rng(0)


def r(*s):
    return rng.uniform(-1, 1, size=s).astype(np.float32)


def mm(ta, tb):
    def f(a, b):
        A = a.transpose(-1, -2) if ta else a
        B = b.transpose(-1, -2) if tb else b
        return torch.matmul(A, B)
    return f


for ta in (0, 1):
    for tb in (0, 1):
        a = r(4, 3) if ta else r(3, 4)
        b = r(5, 4) if tb else r(4, 5)
        torch_case(f"matmul_2d_t{ta}{tb}", mm(ta, tb), {"a": a, "b": b}, grad=["a", "b"])
        a = r(2, 3, 4, 3) if ta else r(2, 3, 3, 4)
        b = r(2, 3, 5, 4) if tb else r(2, 3, 4, 5)
        torch_case(f"matmul_batched_t{ta}{tb}", mm(ta, tb), {"a": a, "b": b}, grad=["a", "b"])
        a = r(2, 4, 3) if ta else r(2, 3, 4)
        b = r(5, 4) if tb else r(4, 5)
        torch_case(f"matmul_shared_t{ta}{tb}", mm(ta, tb), {"a": a, "b": b}, grad=["a", "b"])
torch_case("matmul_edge1", mm(0, 0), {"a": r(1, 1), "b": r(1, 7)}, grad=["a", "b"])
torch_case("linear_bias", lambda x, w, b: torch.nn.functional.linear(x, w, b),
           {"x": r(2, 3, 6), "w": r(4, 6), "b": r(4)}, grad=["x", "w", "b"])
torch_case("linear_nobias", lambda x, w: torch.nn.functional.linear(x, w),
           {"x": r(5, 6), "w": r(1, 6)}, grad=["x", "w"])
# one row (batch-1 inference): graft runs it as a matrix-vector product (linear's
# forward and dW on the direct kernels of core/gemm_direct.c)
for ta in (0, 1):
    for tb in (0, 1):
        a = r(300, 1) if ta else r(1, 300)
        b = r(257, 300) if tb else r(300, 257)
        torch_case(f"matmul_row_t{ta}{tb}", mm(ta, tb), {"a": a, "b": b}, grad=["a", "b"])
torch_case("linear_row", lambda x, w, b: torch.nn.functional.linear(x, w, b),
           {"x": r(1, 300), "w": r(257, 300), "b": r(257)}, grad=["x", "w", "b"])
# Shapes on the direct kernels of core/gemm_direct.c (forward NT, dx NN, dW
# TN all taken: tests/test_ops_matmul.c checks gr_gemm_direct_fits), with
# tails in every blocking: rows % 4, out % 3 (and % 6), in % 8 and in % 24;
# g: dW with rows of x 1 KB apart (in 256).
DIRECT = {"a": ((2, 35), 19, 116, True), "b": ((33,), 20, 112, False), "c": ((67,), 17, 120, True),
          "d": ((8,), 16, 110, True), "e": ((5,), 18, 104, True), "f": ((96,), 48, 784, True),
          "g": ((64,), 21, 256, True)}
for name, (lead, out, inp, bias) in DIRECT.items():
    ins = {"x": r(*lead, inp), "w": r(out, inp)}
    if bias:
        ins["b"] = r(out)
    torch_case(f"linear_direct_{name}", lambda x, w, b=None: torch.nn.functional.linear(x, w, b), ins,
               grad=list(ins))
