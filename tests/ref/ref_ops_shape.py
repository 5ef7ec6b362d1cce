"""Reference values for permute/transpose/concat/slice, embedding and
causal softmax (tests/test_ops_shape.c)."""
import numpy as np
import torch

from reflib import torch_case

rng = np.random.default_rng(3)


def r(*s):
    return rng.uniform(-1, 1, size=s).astype(np.float32)


torch_case("permute_4d", lambda x: x.permute(2, 0, 3, 1), {"x": r(2, 3, 4, 5)}, grad=["x"])
torch_case("permute_3d", lambda x: x.permute(1, 2, 0), {"x": r(3, 1, 4)}, grad=["x"])
torch_case("transpose_neg", lambda x: x.transpose(-1, -3), {"x": r(2, 3, 4, 5)}, grad=["x"])
torch_case("concat_axis1", lambda a, b, c: torch.cat([a, b, c], 1),
           {"a": r(2, 3, 4), "b": r(2, 1, 4), "c": r(2, 2, 4)}, grad=["a", "b", "c"])
torch_case("concat_last", lambda a, b: torch.cat([a, b], -1), {"a": r(3, 2), "b": r(3, 5)}, grad=["a", "b"])
torch_case("slice_mid", lambda x: x[:, 1:4], {"x": r(3, 6, 2)}, grad=["x"])
torch_case("slice_neg", lambda x: x[..., -3:], {"x": r(2, 5)}, grad=["x"])
ids = np.array([3, 0, 3, 9, 1, 3], dtype=np.int64)
torch_case("embedding", lambda w: torch.nn.functional.embedding(torch.from_numpy(ids), w), {"w": r(10, 4)},
           grad=["w"], extra={"ids": ids.astype(np.float32)})


def causal(x):
    T, S = x.shape[-2], x.shape[-1]
    i = torch.arange(T).unsqueeze(1)
    j = torch.arange(S).unsqueeze(0)
    return torch.softmax(x.masked_fill(j > i + (S - T), float("-inf")), -1)


torch_case("causal_square", causal, {"x": r(2, 3, 5, 5) * 3}, grad=["x"])
torch_case("causal_cache", causal, {"x": r(2, 2, 7) * 3}, grad=["x"])
torch_case("causal_one", causal, {"x": r(1, 1, 1)}, grad=["x"])
