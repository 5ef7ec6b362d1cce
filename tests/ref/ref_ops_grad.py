"""Reference values for grad_reverse (tests/test_ops_grad.c): identity forward,
-lambda * grad backward, written as a torch.autograd.Function (DANN's gradient
reversal layer). Dropout has no reference here: PyTorch's RNG stream cannot
be reproduced, so its test checks the mask statistics and rules instead."""
import numpy as np
import torch

from reflib import torch_case

rng = np.random.default_rng(6)


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.lam * g, None


def grad_reverse(x, lam):
    return GradReverse.apply(x, float(lam))


torch_case("grad_reverse", grad_reverse, {"x": rng.uniform(-1, 1, (3, 4)).astype(np.float32),
                                          "lam": np.float32(0.5)}, grad=["x"])
torch_case("grad_reverse_neg", grad_reverse, {"x": rng.uniform(-1, 1, (2, 1, 5)).astype(np.float32),
                                              "lam": np.float32(-2.0)}, grad=["x"])
torch_case("grad_reverse_empty", grad_reverse, {"x": np.zeros((0, 3), np.float32),
                                                "lam": np.float32(1.0)}, grad=["x"])
