"""peer_mlp — the PyTorch twin of bench/bench_mlp.c: MLP 784-256-256-10 with
graft's parameter names (layers.0/2/4), same init file, same batches, same
SGD, same order (inference, then training)."""
import torch.nn as nn

import peerlib as pl


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.layers = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                    nn.Linear(256, 10))

    def forward(self, x):
        return self.layers(self.flatten(x))


def main():
    pl.run_model("mlp", MLP(), pl.parse_args(), (784,))


if __name__ == "__main__":
    main()
