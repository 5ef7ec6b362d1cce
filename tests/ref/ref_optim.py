"""Reference for test_optim: torch.optim SGD/AdamW updates on fixed gradient
sequences, param groups, a frozen parameter, clip_grad_norm_, LR schedulers."""
import numpy as np
import torch

from reflib import write_ref

STEPS = 6
rng = np.random.default_rng(0)
A0 = rng.uniform(-1, 1, (3, 4)).astype(np.float32)
B0 = rng.uniform(-1, 1, (5,)).astype(np.float32)
GA = rng.uniform(-1, 1, (STEPS, 3, 4)).astype(np.float32)
GB = rng.uniform(-1, 1, (STEPS, 5)).astype(np.float32)


def run(make, groups=False, freeze_a=False):
    a = torch.nn.Parameter(torch.tensor(A0))
    b = torch.nn.Parameter(torch.tensor(B0))
    params = [{"params": [a]}, {"params": [b], "lr": 0.1 * 0.05}] if groups else [a, b]
    opt = make(params)
    for t in range(STEPS):
        a.grad = None if freeze_a else torch.tensor(GA[t])
        b.grad = torch.tensor(GB[t])
        opt.step()
    return a.detach().numpy(), b.detach().numpy()


cases = {
    "sgd_plain": (lambda p: torch.optim.SGD(p, lr=0.05), {}),
    "sgd_momentum_wd": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01), {}),
    "sgd_nesterov": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.001), {}),
    "sgd_dampening": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.5), {}),
    "adamw": (lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1), {}),
    "adamw_betas": (lambda p: torch.optim.AdamW(p, lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.0), {}),
    "sgd_groups": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), {"groups": True}),
    "adamw_frozen": (lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1), {"freeze_a": True}),
}
for name, (make, kw) in cases.items():
    a, b = run(make, **kw)
    write_ref("optim_" + name, {"a0": A0, "b0": B0, "ga": GA, "gb": GB, "a": a, "b": b})

# clipping
for name, max_norm in (("clip_active", 0.5), ("clip_inactive", 100.0)):
    a = torch.nn.Parameter(torch.tensor(A0))
    b = torch.nn.Parameter(torch.tensor(B0))
    a.grad = torch.tensor(GA[0])
    b.grad = torch.tensor(GB[0])
    norm = torch.nn.utils.clip_grad_norm_([a, b], max_norm)
    write_ref("optim_" + name, {"ga": GA[0], "gb": GB[0], "norm": np.array([norm.item()]),
                                "max_norm": np.array([max_norm]), "a": a.grad, "b": b.grad})


def lrs(make, n):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    s = make(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return np.array(out)


write_ref("sched_linear", {"lr": lrs(lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=5), 10)})
write_ref("sched_cosine", {"lr": lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.001), 21)})
write_ref("sched_step", {"lr": lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 10)})
