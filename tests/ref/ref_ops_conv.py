"""Reference values for conv2d and the pools (tests/test_ops_conv.c)."""
import numpy as np
import torch
import torch.nn.functional as F

from reflib import torch_case, write_ref

rng = np.random.default_rng(1)


def r(*s):
    return rng.uniform(-1, 1, size=s).astype(np.float32)


# name, N, C, H, W, O, kh, kw, stride, pad, dil, groups, bias
CONV = [
    ("conv_basic", 2, 3, 7, 6, 4, 3, 3, 1, 0, 1, 1, True),
    ("conv_pad_stride", 2, 2, 9, 8, 3, 3, 2, 2, 1, 1, 1, True),
    ("conv_dilated", 1, 2, 9, 9, 2, 3, 3, 1, 2, 2, 1, False),
    ("conv_groups", 2, 4, 6, 6, 6, 3, 3, 1, 1, 1, 2, True),
    ("conv_depthwise", 2, 3, 5, 5, 3, 3, 3, 1, 1, 1, 3, True),
    ("conv_1x1", 3, 5, 4, 4, 2, 1, 1, 1, 0, 1, 1, True),
    ("conv_lenet2", 4, 6, 14, 14, 16, 5, 5, 1, 0, 1, 1, True),
    ("conv_edge1", 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, True),
    # more columns than one L2 chunk (ops_conv.c CONV_CHUNK_FLOATS = 64K floats):
    # 4 + 2 samples, and 6 + 2 samples with groups and stride
    ("conv_chunks", 6, 4, 20, 20, 5, 3, 3, 1, 1, 1, 1, True),
    ("conv_chunks_groups", 8, 4, 48, 48, 4, 3, 3, 2, 1, 1, 2, True),
    # stride 1 takes the wide lowering (padded planes, long row copies): LeNet's
    # 1-channel first conv over 3 chunks, a rectangular dilated kernel with odd
    # sizes, groups over several chunks, a ResNet 3x3 layer (one sample a chunk)
    ("conv_lenet1", 5, 1, 28, 28, 6, 5, 5, 1, 2, 1, 1, True),
    ("conv_wide_odd", 3, 5, 9, 13, 7, 3, 2, 1, 1, 2, 1, True),
    ("conv_wide_groups_chunks", 3, 8, 30, 30, 6, 3, 3, 1, 1, 1, 2, False),
    ("conv_resnet3x3", 2, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, True),
    # strided: the input split into stride phases (odd sizes, dilation, a 1x1 downsample)
    ("conv_stride3_dil", 2, 3, 11, 10, 4, 3, 2, 3, 2, 2, 1, True),
    ("conv_1x1_s2", 3, 4, 9, 8, 5, 1, 1, 2, 0, 1, 1, False),
    # same size (stride 1, OH = H, OW = W): direct kernels and the shifted-plane
    # gemm path. Planes thinner or flatter than the padding, rows with a partial
    # last vector, output channels not a multiple of a tile, 5x5 and 7x7 kernels
    ("conv_same_thin", 2, 3, 3, 1, 2, 3, 3, 1, 1, 1, 1, True),
    ("conv_same_flat", 2, 2, 1, 5, 3, 3, 3, 1, 1, 1, 1, True),
    ("conv_same_dil_groups", 3, 4, 6, 9, 6, 3, 3, 1, 2, 2, 2, True),
    ("conv_same_wide", 2, 3, 5, 37, 5, 3, 3, 1, 1, 1, 1, False),
    ("conv_same_k5", 2, 3, 7, 19, 7, 5, 5, 1, 2, 1, 1, True),
    ("conv_same_k7", 1, 2, 8, 8, 7, 7, 7, 1, 3, 1, 1, True),
    # valid (stride 1, no padding): conv_valid.c's dW kernel, 8 or 16 output
    # channels a group, kernels 3x2, 4x6 (chunks of 4 samples and 1), 1x5
    ("conv_valid_o8_k3x2", 3, 2, 7, 9, 8, 3, 2, 1, 0, 1, 1, False),
    ("conv_valid_groups_o16", 5, 4, 8, 7, 32, 4, 6, 1, 0, 1, 2, True),
    ("conv_valid_o16_k1x5", 2, 3, 4, 9, 16, 1, 5, 1, 0, 1, 1, True),
    # strided and padded, not same size: the direct kernels over phase-split
    # planes. ResNet-8's stride-2 3x3 convs (rows of 16, and of 8 two at a
    # time, batch 1) and 1x1 downsample; odd sizes with a partial last vector
    # and output channels not a multiple of a tile; a plane smaller than the
    # kernel; rows of 2 vectors + a tail; stride 1 with padding that shrinks
    # the plane; 81 taps (more than the direct kernels take: gemm path)
    ("conv_resnet_s2", 2, 16, 32, 32, 32, 3, 3, 2, 1, 1, 1, False),
    ("conv_resnet_s2_rows8", 1, 32, 16, 16, 64, 3, 3, 2, 1, 1, 1, False),
    ("conv_resnet_down", 2, 16, 32, 32, 32, 1, 1, 2, 0, 1, 1, False),
    ("conv_s2_odd", 3, 5, 13, 11, 7, 3, 3, 2, 1, 1, 1, True),
    ("conv_s2_tiny", 1, 3, 2, 2, 4, 3, 3, 2, 1, 1, 1, True),
    ("conv_s2_wide", 2, 3, 7, 41, 8, 3, 3, 2, 1, 1, 1, True),
    ("conv_s1_pad_k5", 2, 3, 9, 10, 5, 5, 5, 1, 1, 1, 1, True),
    ("conv_s2_k9", 1, 2, 12, 12, 3, 9, 9, 2, 1, 1, 1, True),
    # even padding with an odd width: both column phases from one pass (pad 2, 5x5)
    ("conv_s2_pad2_odd", 2, 3, 9, 37, 5, 5, 5, 2, 2, 1, 1, True),
    # the transposed weight gradient (output channels a multiple of 8): groups of
    # 8 (one vector of outputs), 27 columns (tiles of 6, 2 and 1), 5x6 planes
    ("conv_s2_groups_o16", 2, 6, 9, 11, 16, 3, 3, 2, 1, 1, 2, True),
    # dx by x parity (stride 2 on even planes): 5x5 pad 2 (dY padded on every side)
    ("conv_s2_k5_even", 2, 3, 10, 12, 8, 5, 5, 2, 2, 1, 1, True),
    # forward tiles of 6 pixels (rows of 12), of 5, 5 and 3 (rows of 13)
    ("conv_valid_o8_ow12", 2, 3, 5, 14, 8, 2, 3, 1, 0, 1, 1, True),
    ("conv_valid_o16_ow13", 2, 2, 4, 15, 16, 3, 3, 1, 0, 1, 1, True),
    # 3x3 pad 1, >= 8 channels: Winograd F(2x2, 3x3) (conv_winograd.c), forward and dx.
    # 8-wide planes (two tile rows a chunk), output-channel tails, groups, a last
    # block of one chunk (a single vector of tiles), rows of 3 chunks
    ("conv_wino_rows8", 2, 8, 8, 8, 10, 3, 3, 1, 1, 1, 1, True),
    ("conv_wino_rows8_tall", 1, 11, 12, 8, 9, 3, 3, 1, 1, 1, 1, False),
    ("conv_wino_tails", 2, 9, 6, 16, 13, 3, 3, 1, 1, 1, 1, True),
    ("conv_wino_groups", 2, 16, 16, 16, 16, 3, 3, 1, 1, 1, 2, False),
    ("conv_wino_h10", 1, 8, 10, 16, 8, 3, 3, 1, 1, 1, 1, True),
    ("conv_wino_wide", 1, 8, 4, 48, 12, 3, 3, 1, 1, 1, 1, True),
]
for name, N, C, H, W, O, kh, kw, s, p, d, g, b in CONV:
    inputs = {"x": r(N, C, H, W), "w": r(O, C // g, kh, kw)}
    if b:
        inputs["b"] = r(O)
    torch_case(name, lambda x, w, b=None, s=s, p=p, d=d, g=g: F.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g),
               inputs, grad=list(inputs))
    write_ref(name + "_opts", {"opts": np.array([s, p, d, g], dtype=np.float32)})


def distinct(*s):
    """Values spaced >= 0.01 apart so the max of each window is unique."""
    n = int(np.prod(s))
    return (rng.permutation(n).astype(np.float32) * 0.01 - n * 0.005).reshape(s)


# name, N, C, H, W, k, stride, pad, count_include_pad
POOL = [
    ("pool_2x2", 2, 3, 6, 6, 2, 2, 0, True),
    ("pool_3s2p1", 2, 2, 7, 8, 3, 2, 1, True),
    ("pool_3s2p1_nopad", 2, 2, 7, 8, 3, 2, 1, False),
    ("pool_overlap", 1, 2, 5, 5, 3, 1, 0, True),
    ("pool_2x2_wide", 1, 2, 7, 39, 2, 2, 0, True),  # 19 outputs a row: full vectors and a tail
]
for name, N, C, H, W, k, s, p, cip in POOL:
    x = distinct(N, C, H, W)
    torch_case("max" + name, lambda x, k=k, s=s, p=p: F.max_pool2d(x, k, s, p), {"x": x}, grad=["x"])
    # the fused relu(max_pool2d(x)), against torch's order in LeNet: pool of the relu
    torch_case("maxrelu" + name, lambda x, k=k, s=s, p=p: F.max_pool2d(F.relu(x), k, s, p), {"x": x}, grad=["x"])
    torch_case("avg" + name, lambda x, k=k, s=s, p=p, cip=cip: F.avg_pool2d(x, k, s, p, count_include_pad=cip),
               {"x": x}, grad=["x"])
    write_ref(name + "_opts", {"opts": np.array([k, s, p, cip], dtype=np.float32)})
torch_case("gap", lambda x: F.adaptive_avg_pool2d(x, 1), {"x": r(2, 3, 5, 4)}, grad=["x"])
