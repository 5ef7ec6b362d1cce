"""peer_lenet — the PyTorch twin of bench/bench_lenet.c: LeNet-5 on 1x28x28
with graft's parameter names (features.*, classifier.*), same init file,
same batches, same SGD, same order (inference, then training)."""
import os
import sys

import peerlib as pl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from torch_models import LeNet  # noqa: E402  (graft's architectures in torch)


def main():
    pl.run_model("lenet", LeNet(), pl.parse_args(), (1, 28, 28))


if __name__ == "__main__":
    main()
