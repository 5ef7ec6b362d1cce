"""Reference for test_lenet_ref: LeNet (graft's names: features.*,
classifier.*) in PyTorch on fixed Fashion-MNIST batches: initial weights,
step-0 logits and parameter gradients, then 50 SGD(0.01, momentum 0.9) steps
and their losses."""
import gzip
import os

import numpy as np
import torch
import torch.nn as nn

from reflib import write_ref
from torch_models import LeNet

STEPS, BATCH = 50, 32
torch.manual_seed(0)


def idx(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


d = os.environ.get("GRAFT_FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
n = STEPS * BATCH
x = (idx(os.path.join(d, "train-images-idx3-ubyte.gz"))[:n].astype(np.float32) / 255.0 - 0.2860) / 0.3530
y = idx(os.path.join(d, "train-labels-idx1-ubyte.gz"))[:n].astype(np.int64)
x = torch.tensor(x.reshape(STEPS, BATCH, 1, 28, 28))
y = torch.tensor(y.reshape(STEPS, BATCH))

m = LeNet()
arrays = {"x": x, "y": y.float()}
for k, v in m.state_dict().items():
    arrays["init." + k] = v.clone()
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
lossf = nn.CrossEntropyLoss()
losses = []
for t in range(STEPS):
    opt.zero_grad()
    logits = m(x[t])
    loss = lossf(logits, y[t])
    loss.backward()
    if t == 0:
        arrays["logits0"] = logits.detach().clone()
        for k, p in m.named_parameters():
            arrays["grad0." + k] = p.grad.clone()
    opt.step()
    losses.append(loss.item())
arrays["losses"] = np.array(losses, dtype=np.float32)
for k, v in m.state_dict().items():
    arrays["final." + k] = v.clone()
write_ref("lenet_sgd50", arrays)
