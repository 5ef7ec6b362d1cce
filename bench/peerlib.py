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
    if extra:
        extra(p)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if os.environ.get("OPENBLAS_NUM_THREADS") != str(a.threads):
        sys.exit("peer: OPENBLAS_NUM_THREADS must equal --threads (set by bench/driver.py)")
    return a


def blas_info():
    """OpenBLAS as loaded into this process by torch, and torch's CPU kernels."""
    info = {"torch": torch.__version__}
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


def median(v):
    return float(np.median(np.asarray(v)))
