"""Reference for test_atlas: aTLAS composition and the gradient of the loss
with respect to the coefficients, by PyTorch autograd through
theta_b = base_b + sum_t lam[t, b] * tau[t, b] on a tiny MLP
(layers.0 Linear(6,5), ReLU, layers.2 Linear(5,3)), cross-entropy loss."""
import numpy as np
import torch

from reflib import write_ref

rng = np.random.default_rng(3)
names = ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]
shapes = [(5, 6), (5,), (3, 5), (3,)]
T = 2


def r(*s, scale=1.0):
    return torch.tensor(rng.uniform(-scale, scale, size=s).astype(np.float32))


base = [r(*s) for s in shapes]
tau = [[r(*s, scale=0.5) for s in shapes] for _ in range(T)]
lam = r(T, len(names)).requires_grad_(True)
x = r(8, 6, scale=2.0)
y = torch.tensor(rng.integers(0, 3, size=8))
theta = [base[b] + sum(lam[t, b] * tau[t][b] for t in range(T)) for b in range(len(names))]
h = torch.relu(torch.nn.functional.linear(x, theta[0], theta[1]))
logits = torch.nn.functional.linear(h, theta[2], theta[3])
loss = torch.nn.functional.cross_entropy(logits, y)
loss.backward()
arrays = {"x": x, "y": y.float(), "lam": lam, "loss": loss.reshape(1), "dlam": lam.grad}
for b, n in enumerate(names):
    arrays["base." + n] = base[b]
    arrays["theta." + n] = theta[b]
    for t in range(T):
        arrays[f"tv{t}." + n] = tau[t][b]
write_ref("atlas_mlp", arrays)
