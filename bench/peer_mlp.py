"""peer_mlp — the PyTorch twin of bench/bench_mlp.c: MLP 784-256-256-10,
same init file, same batches, same SGD, same order (inference, then training)."""
import torch.nn as nn

import peerlib as pl


def main():
    a = pl.parse_args()
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    pl.run_model("mlp", model, a, (784,))


if __name__ == "__main__":
    main()
