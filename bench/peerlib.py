"""peerlib — shared by the PyTorch peers (bench/peer_*.py) of graft's benchmarks.

Sets the thread count the same way for torch's intra-op pool and OpenBLAS
(torch.set_num_threads does not limit OpenBLAS; bench/driver.py also sets
OPENBLAS_NUM_THREADS and OMP_NUM_THREADS before the process starts), reads
the raw float32 init files written by the graft side, reports which kernels
torch runs, and prints one JSON line per case like the bench_*.c programs.
"""
import argparse
import ctypes
import json
import os
import re
import sys
import time

import numpy as np
import torch


def parse_args(extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--init")
    p.add_argument("--steps", type=int, default=0)
    p.add_argument("--batch", type=int, default=0)
    p.add_argument("--blocks", type=int, default=0, help="paced run: the timed steps in K blocks (see await_go)")
    p.add_argument("--intraop", type=int, help="torch threads if not --threads (OpenBLAS keeps --threads)")
    p.add_argument("--float64", action="store_true",
                   help="model and data in float64: the exact reference bench/driver.py consults when the sides disagree")
    if extra:
        extra(p)
    a = p.parse_args()
    global BLOCKS
    BLOCKS = a.blocks
    if a.float64:
        torch.set_default_dtype(torch.float64)
    torch.set_num_threads(a.intraop or a.threads)
    if os.environ.get("OPENBLAS_NUM_THREADS") != str(a.threads):
        sys.exit("peer: OPENBLAS_NUM_THREADS must equal --threads (set by bench/driver.py)")
    return a


def blas_info():
    """OpenBLAS as loaded into this process by torch, and torch's CPU kernels."""
    info = {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        info["blas_core"] = lib.openblas_get_corename().decode()
        info["blas_config"] = lib.openblas_get_config().decode()
    except OSError as e:
        info["blas_core"] = "unknown (%s)" % e
    m = re.search(r"CPU capability usage: (\S+)", torch.__config__.show())
    info["torch_cpu_capability"] = m.group(1) if m else "unknown"
    info["mkldnn"] = bool(torch.backends.mkldnn.is_available())
    return info


def read_blob(path, counts):
    """The float32 arrays of an init file, in order; the size must match exactly."""
    raw = np.fromfile(path, dtype="<f4")
    if raw.size != sum(counts):
        sys.exit("peer: %s has %d floats, want %d" % (path, raw.size, sum(counts)))
    out, off = [], 0
    for c in counts:
        out.append(raw[off:off + c].copy())
        off += c
    return out


def emit(record):
    record.update(blas_info())
    print(json.dumps(record), flush=True)


now = time.perf_counter
BLOCKS = 0  # --blocks K: a paced run (await_go), training timed in K blocks (bench_util.h bench_blocks)


def await_go(section):
    """Paced runs: says {"await": section} and waits for the driver's go (a
    line on stdin) before timing the section, like bench_await_go in bench_util.h."""
    if BLOCKS <= 0:
        return
    print(json.dumps({"await": section}), flush=True)
    if not sys.stdin.readline():
        sys.exit("peer: paced run: no go for %s (stdin closed)" % section)


def time_steps(name, step, first, steps):
    """Times step(first) .. step(first + steps - 1) like bench_time_steps in
    bench_util.h (paced: in --blocks blocks, each after a go, each reported as
    a "train_block" record); returns (wall seconds, cpu seconds, last loss)."""
    blocks = BLOCKS
    if blocks and (steps < blocks or steps % blocks):
        sys.exit("peer: --blocks %d must divide --steps %d" % (blocks, steps))
    per_block = steps // blocks if blocks else steps
    wall = cpu = 0.0
    loss = None
    for b in range(blocks or 1):
        await_go("train")
        t0, cpu0 = now(), time.process_time()
        for s in range(per_block):
            loss = step(first + b * per_block + s)
        dt, dc = now() - t0, time.process_time() - cpu0
        wall, cpu = wall + dt, cpu + dc
        if blocks:
            print(json.dumps({"bench": name, "case": "train_block", "block": b, "time_s": dt / per_block,
                              "cpu_s": dc / per_block}), flush=True)
    return wall, cpu, loss


def median(v):
    return float(np.median(np.asarray(v)))


# The same constants as bench/bench_train.h (a mismatch shows as a loss mismatch).
NBATCHES, WARMUP, LR = 8, 5, 0.05


def load_model(model, path, batch, sample_shape):
    """Fills the model's parameters from the init file after checking, with
    the graft side's "<init>.names", that they are the same parameters (name
    and size, state_dict order); returns the data (X, Y)."""
    with open(path + ".names") as f:
        want = [(n, int(k)) for n, k in (line.split() for line in f if line.strip())]
    named = list(model.named_parameters())
    have = [(n, p.numel()) for n, p in named]
    if have != want:
        sys.exit("peer: parameters differ from graft's:\n graft %s\n torch %s" % (want, have))
    n = NBATCHES * batch
    counts = [k for _, k in want] + [n * int(np.prod(sample_shape)), n]
    arrays = read_blob(path, counts)
    with torch.no_grad():
        for (_, p), a in zip(named, arrays):
            p.copy_(torch.from_numpy(a).view_as(p))
    x = torch.from_numpy(arrays[-2]).view(NBATCHES, batch, *sample_shape).to(torch.get_default_dtype())
    y = torch.from_numpy(arrays[-1]).long().view(NBATCHES, batch)
    return x, y


def train(name, model, x, y, steps):
    """Plain SGD on the batch cycle, like bench_train.h; one JSON record."""
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    p0 = [p.detach().clone() for p in model.parameters()]

    def step(k):
        out = model(x[k])
        loss = loss_fn(out, y[k])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    loss0 = step(0)
    for s in range(1, WARMUP):
        step(s % NBATCHES)
    wall, cpu, loss = time_steps(name, lambda s: step(s % NBATCHES), WARMUP, steps)
    per_step, cpu_per_step = wall / steps, cpu / steps
    with torch.no_grad():
        moved = sum(float(((p.double() - q.double()) ** 2).sum()) for p, q in zip(model.parameters(), p0))
    emit({"bench": name, "case": "train", "time_s": per_step, "cpu_s": cpu_per_step, "items": x.shape[1],
          "loss0": loss0, "loss_final": loss, "update_norm": moved ** 0.5, "steps": WARMUP + steps})


def infer(name, model, x, rows, reps):
    """Median no-grad forward latency on the first `rows` samples of batch 0."""
    model.eval()
    xb = x[0][:rows]
    times = []
    with torch.no_grad():
        checksum = float(model(xb).abs().mean())
        await_go("infer_b%d" % rows)
        for _ in range(reps):
            t0 = now()
            model(xb)
            times.append(now() - t0)
    model.train()
    emit({"bench": name, "case": "infer_b%d" % rows, "time_s": median(times), "items": rows,
          "out_checksum": checksum})


def run_model(name, model, args, sample_shape):
    """The peer's side of bench_main() in bench_train.h: same cases, same order."""
    x, y = load_model(model, args.init, args.batch, sample_shape)
    reps = 1 if args.float64 else None  # the float64 run is a reference, not timed
    infer(name, model, x, 1, reps or (100 if args.quick else 500))
    infer(name, model, x, args.batch, reps or (10 if args.quick else 50))
    train(name, model, x, y, args.steps)
