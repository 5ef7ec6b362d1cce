"""Reference for test_nn: a PyTorch MLP twin (flatten + layers.{0,2,4}) with
its state_dict, forward output and parameter gradients for a random seed."""
import torch

from reflib import write_ref

torch.manual_seed(0)


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = torch.nn.Flatten()
        self.layers = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8),
                                          torch.nn.Tanh(), torch.nn.Linear(8, 3))

    def forward(self, x):
        return self.layers(self.flatten(x))


m = MLP()
x = torch.empty(4, 2, 5).uniform_(-1, 1)
y = m(x)
gy = torch.empty_like(y).uniform_(-1, 1)
y.backward(gy)
arrays = {"x": x, "y": y, "gy": gy}
for k, v in m.state_dict().items():
    arrays[k] = v
for k, p in m.named_parameters():
    arrays["grad." + k] = p.grad
write_ref("nn_mlp", arrays)
