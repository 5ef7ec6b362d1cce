"""reflib — write reference tensors for graft's C tests (format: tests/util/refdata.h).

Each tests/ref/ref_<name>.py script is run at test time (ctest fixture) with
the output directory as argv[1]; it computes reference values with PyTorch or
numpy and writes one <case>.ref file per case with write_ref().
"""
import os
import struct
import sys

import numpy as np


def out_dir():
    d = sys.argv[1] if len(sys.argv) > 1 else "ref"
    os.makedirs(d, exist_ok=True)
    return d


def write_ref(case, arrays):
    """arrays: dict name -> array-like (torch tensors are detached). Atomic write."""
    path = os.path.join(out_dir(), case + ".ref")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"GRREF1\0\0")
        f.write(struct.pack("<I", len(arrays)))
        for name, a in arrays.items():
            if hasattr(a, "detach"):
                a = a.detach().cpu().numpy()
            a = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb)
            f.write(struct.pack("<I", a.ndim))
            for d in a.shape:
                f.write(struct.pack("<q", d))
            f.write(a.astype("<f4").tobytes())
    os.replace(tmp, path)


def torch_case(case, fn, inputs, grad=None, seed=0, extra=None):
    """Runs y = fn(**inputs) with torch, seeds backward with a random gradient
    'gy' of y's shape, and writes inputs, 'y', 'gy' and 'd<name>' for every
    input in `grad`. Inputs are numpy arrays or torch tensors."""
    import torch
    torch.manual_seed(seed)
    grad = grad or []
    t = {}
    for k, v in inputs.items():
        tv = torch.as_tensor(np.asarray(v, dtype=np.float32)) if not hasattr(v, "detach") else v.detach().clone()
        if k in grad:
            tv.requires_grad_(True)
        t[k] = tv
    y = fn(**t)
    gy = torch.empty_like(y).uniform_(-1, 1)
    arrays = dict((k, v) for k, v in t.items())
    arrays["y"] = y
    arrays["gy"] = gy
    if grad:
        y.backward(gy)
        for k in grad:
            arrays["d" + k] = t[k].grad
    if extra:
        arrays.update(extra)
    write_ref(case, arrays)
