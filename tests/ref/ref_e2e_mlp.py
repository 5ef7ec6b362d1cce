"""End-to-end reference for tests/test_e2e_mlp.c: an 8-16-16-3 ReLU MLP
trained with torch.optim.SGD (lr 0.1) for 20 steps on a synthetic 3-class
problem, minibatches of 16 taken in order from 64 points. Writes the initial
parameters (PyTorch state_dict names with '.' -> '_'), the data, the 20
per-step losses and the final parameters."""
import numpy as np
import torch

from reflib import write_ref

torch.manual_seed(0)
N, D, H, K, BATCH, STEPS, LR = 64, 8, 16, 3, 16, 20, 0.1

# 3 classes by a random linear teacher plus a nonlinearity, so the task is learnable
x = torch.randn(N, D)
teacher = torch.randn(D, K)
y = torch.argmax(torch.tanh(x @ teacher) + 0.1 * torch.randn(N, K), dim=1)

model = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, H), torch.nn.ReLU(),
                            torch.nn.Linear(H, K))
arrays = {"x": x, "y": y.float()}
for name, p in model.state_dict().items():
    arrays["init_" + name.replace(".", "_")] = p.clone()

opt = torch.optim.SGD(model.parameters(), lr=LR)
losses = []
for step in range(STEPS):
    lo = (step * BATCH) % N
    xb, yb = x[lo:lo + BATCH], y[lo:lo + BATCH]
    loss = torch.nn.functional.cross_entropy(model(xb), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
arrays["losses"] = np.array(losses, dtype=np.float32)
for name, p in model.state_dict().items():
    arrays["final_" + name.replace(".", "_")] = p.clone()
write_ref("e2e_mlp", arrays)
