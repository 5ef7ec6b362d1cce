"""peer_lenet — the PyTorch twin of bench/bench_lenet.c: LeNet-5 on 1x28x28
with graft's parameter names (features.*, classifier.*), same init file,
same batches, same SGD, same order (inference, then training)."""
import torch.nn as nn

import peerlib as pl


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                        nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def main():
    pl.run_model("lenet", LeNet(), pl.parse_args(), (1, 28, 28))


if __name__ == "__main__":
    main()
