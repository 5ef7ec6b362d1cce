"""torch_models — the PyTorch twins of graft's architectures, with graft's
parameter names (features.*, classifier.*), shared by the reference tests
(tests/ref) and the PyTorch peers of the benchmarks and the demo (bench/)."""
import torch.nn as nn


class LeNet(nn.Module):
    """graft's gr_arch_lenet for 1x28x28 inputs."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                        nn.Linear(84, n_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))
