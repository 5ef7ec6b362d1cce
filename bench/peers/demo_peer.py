#!/usr/bin/python3
"""demo_peer — the PyTorch twin of `graft demo`, same protocol:

Fashion-MNIST (Debian's dataset-fashion-mnist), pixels/255 normalized with
mean 0.2860 / std 0.3530. LeNet (features.*, classifier.*; PyTorch default
init) pretrained on classes 0-4 (30,000 images) with SGD(lr 0.01, momentum
0.9), batch 64, 3 epochs. Transfer to classes 5-9 with a stratified fraction
of the target training labels (round(f * class count) per class, >= 1),
per budget and seed; every seed pretrains its own source model (seeded by
the seed); each method gets a fresh LeNet(5 classes) seeded by the
seed, copies the source weights except the head classifier.4 (except scratch),
freezes per method (linear-probe: all but the head; finetune-frozen-early:
features.*), and trains max(epochs * ceil(n / 64), min_steps) SGD steps over
reshuffled epochs. Accuracy is on the full target test set (5,000 images).

Usage: /usr/bin/python3 bench/peers/demo_peer.py [--quick] [--seeds 3] [--out results.jsonl]
       [--source-dir DEMO_OUT/source-seed%d]
--source-dir loads each seed's source model from the model directory that
`graft demo` wrote (model.safetensors) instead of pretraining one: both sides
then transfer the very same source weights (a paired comparison).
The label subsets and batch orders come from numpy/torch RNGs, so they differ
from graft's (which uses its own xoshiro256**): compare means over seeds.
"""
import argparse
import gzip
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "ref"))
from torch_models import LeNet  # noqa: E402  (graft's architectures in torch)

DIR = os.environ.get("GRAFT_FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2860, 0.3530


def idx(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


def load(split, lo, limit, seed, norm=True):
    pre = "train" if split == "train" else "t10k"
    x = idx(os.path.join(DIR, pre + "-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    y = idx(os.path.join(DIR, pre + "-labels-idx1-ubyte.gz")).astype(np.int64)
    keep = (y >= lo) & (y < lo + 5)
    x, y = ((x[keep] - MEAN) / STD if norm else x[keep]), y[keep] - lo
    if limit and limit < len(y):
        sel = np.sort(np.random.default_rng(seed).permutation(len(y))[:limit])
        x, y = x[sel], y[sel]
    return torch.tensor(x[:, None]), torch.tensor(y)


def read_safetensors(path):
    """{name: tensor} from a safetensors file of F32 tensors."""
    with open(path, "rb") as f:
        b = f.read()
    n = int.from_bytes(b[:8], "little")
    head = json.loads(b[8:8 + n])
    out = {}
    for name, e in head.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            raise SystemExit("%s: tensor %s has dtype %s, expected F32" % (path, name, e["dtype"]))
        lo, hi = e["data_offsets"]
        a = np.frombuffer(b, np.float32, count=(hi - lo) // 4, offset=8 + n + lo)
        out[name] = torch.tensor(a.reshape(e["shape"]))
    return out


def budget(x, y, frac, seed):
    if frac >= 1:
        return x, y
    rng = np.random.default_rng(seed)
    keep = []
    for k in range(5):
        ids = np.nonzero(y.numpy() == k)[0]
        n = max(1, int(round(frac * len(ids))))
        keep.extend(rng.permutation(ids)[:n])
    keep = np.sort(np.array(keep))
    return x[keep], y[keep]


def train(model, x, y, steps, lr, momentum, batch, seed):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum)
    g = torch.Generator().manual_seed(seed)
    lossf = nn.CrossEntropyLoss()
    step = 0
    model.train()
    while step < steps:
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch):
            if step >= steps:
                break
            b = perm[i:i + batch]
            opt.zero_grad()
            loss = lossf(model(x[b]), y[b])
            loss.backward()
            opt.step()
            step += 1
    return step


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    correct = 0
    for i in range(0, len(y), 500):
        correct += (model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item()
    return correct / len(y)


def setup(method, model, source):
    if method != "scratch":
        sd = {k: v for k, v in source.state_dict().items() if not k.startswith("classifier.4.")}
        model.load_state_dict(sd, strict=False)
    if method == "linear-probe":
        for n, p in model.named_parameters():
            p.requires_grad = n.startswith("classifier.4.")
    elif method == "finetune-frozen-early":
        for n, p in model.named_parameters():
            p.requires_grad = not n.startswith("features.")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--source-epochs", type=int, default=3)
    ap.add_argument("--target-epochs", type=int, default=3)
    ap.add_argument("--min-steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--budgets", default="0.01,0.1,1")
    ap.add_argument("--methods", default="scratch,linear-probe,finetune,finetune-frozen-early")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-norm", action="store_true", help="pixels in [0,1], no mean/std normalization")
    ap.add_argument("--source-cache", default=None, help="reuse (or save) each seed's pretrained source state_dict here; %%d is the seed")
    ap.add_argument("--source-dir", default=None,
                    help="load each seed's source model from this graft model directory; %%d is the seed")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.quick:
        a.source_epochs, a.target_epochs, a.min_steps = 1, 1, min(a.min_steps, 60)
    lim_tr, lim_te = (6000, 1000) if a.quick else (0, 0)
    t_all = time.time()
    nm = not a.no_norm
    sx, sy = load("train", 0, lim_tr, 1, nm)
    stx, sty = load("test", 0, lim_te, 2, nm)
    tx, ty = load("train", 5, lim_tr, 3, nm)
    ttx, tty = load("test", 5, lim_te, 4, nm)
    out = open(a.out, "w") if a.out else None
    rows = []

    def emit(rec):
        rows.append(rec)
        if out:
            out.write(json.dumps(rec) + "\n")
            out.flush()

    budgets = [float(b) for b in a.budgets.split(",")]
    methods = a.methods.split(",")
    for s in range(a.seed, a.seed + a.seeds):
        # every seed pretrains its own source model (as graft demo does)
        torch.manual_seed(s)
        source = LeNet(5)
        t0 = time.time()
        steps = a.source_epochs * math.ceil(len(sy) / a.batch)
        cache = a.source_cache % s if a.source_cache else None
        if a.source_dir:
            steps = 0
            source.load_state_dict(read_safetensors(os.path.join(a.source_dir % s, "model.safetensors")))
        elif cache and os.path.exists(cache):
            source.load_state_dict(torch.load(cache))
        else:
            train(source, sx, sy, steps, a.lr, a.momentum, a.batch, s)
            if cache:
                torch.save(source.state_dict(), cache)
        emit({"phase": "pretrain", "method": "lenet", "budget": 1.0, "seed": s, "steps": steps,
              "accuracy": accuracy(source, stx, sty), "seconds": time.time() - t0})
        print("pretrain seed %d: source test acc %.2f%% (%.1fs)" % (s, 100 * rows[-1]["accuracy"],
                                                                   rows[-1]["seconds"]), flush=True)
        for b in budgets:
            bx, by = budget(tx, ty, b, s)
            for m in methods:
                torch.manual_seed(s)
                model = LeNet(5)
                setup(m, model, source)
                n_steps = max(a.target_epochs * math.ceil(len(by) / a.batch), a.min_steps)
                t0 = time.time()
                train(model, bx, by, n_steps, a.lr, a.momentum, a.batch, s)
                acc = accuracy(model, ttx, tty)
                trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
                emit({"phase": "transfer", "method": m, "budget": b, "n_labels": len(by), "seed": s,
                      "steps": n_steps, "accuracy": acc, "trainable_params": trainable,
                      "seconds": time.time() - t0})
                print("  %-22s %6.2f%% labels seed %d: test acc %.2f%% (%.1fs)" % (m, 100 * b, s, 100 * acc,
                                                                                   time.time() - t0), flush=True)
    src = [r["accuracy"] for r in rows if r["phase"] == "pretrain"]
    print("\nsource test acc mean %.2f%% over %d seeds" % (100 * np.mean(src), len(src)))
    print("\nmethod                  budget   acc mean (over %d seeds)" % a.seeds)
    for m in methods:
        for b in budgets:
            accs = [r["accuracy"] for r in rows if r["phase"] == "transfer" and r["method"] == m and r["budget"] == b]
            print("%-22s %6.2f%%   %.2f%%" % (m, 100 * b, 100 * np.mean(accs)))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print("total %.1fs, peak RSS %.0f MiB" % (time.time() - t_all, rss / 2**20))


if __name__ == "__main__":
    main()
