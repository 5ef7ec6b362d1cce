"""Reference for tests/test_logreg.c: multinomial logistic regression
minimized exactly in float64 with torch's L-BFGS (strong Wolfe) until the
gradient vanishes: f = mean CE(x W^T + b, y) + l2/2 ||W||^2 (b unpenalized),
for l2 = 1/(n C), C in {1, 0.1}; also the accuracy and mean loss of the
solution on held-out data."""
import numpy as np
import torch

from reflib import write_ref

torch.manual_seed(0)
rng = np.random.default_rng(3)
n, d, k = 60, 7, 4
x = rng.normal(size=(n, d)).astype(np.float32)
y = rng.integers(0, k, size=n)
x[np.arange(n), y] += 1.5  # informative but not separable
xt = rng.normal(size=(25, d)).astype(np.float32)
yt = rng.integers(0, k, size=25)
xt[np.arange(25), yt] += 1.5

for name, C in (("c1", 1.0), ("c01", 0.1)):
    l2 = 1.0 / (n * C)
    X, Y = torch.tensor(x, dtype=torch.float64), torch.tensor(y)
    W = torch.zeros(k, d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=2000, tolerance_grad=1e-12, tolerance_change=0,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        f = torch.nn.functional.cross_entropy(X @ W.T + b, Y) + 0.5 * l2 * (W * W).sum()
        f.backward()
        return f

    for _ in range(5):
        opt.step(closure)
    gmax = max(W.grad.abs().max().item(), b.grad.abs().max().item())
    assert gmax < 1e-7, gmax  # float64: the optimum to ~1e-7 in W, far inside the 1e-4 the test asks
    logits = torch.tensor(xt, dtype=torch.float64) @ W.T + b
    acc = (logits.argmax(1).numpy() == yt).mean()
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(yt)).item()
    write_ref("logreg_" + name, {"x": x, "y": y, "w": W, "b": b, "xt": xt, "yt": yt,
                                 "l2": [l2], "acc": [acc], "loss": [loss]})
