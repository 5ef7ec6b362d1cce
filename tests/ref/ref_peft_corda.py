"""Reference values for CorDA (tests/test_peft_corda.c).

Hugging Face PEFT cannot be installed here, so its CorDA math is written out
in numpy (float64) following peft/tuners/lora/corda.py and LoraLayer.corda_init:
  hook:   X = X / |max X|;  C += X^T X  per forward call;  C /= calls
  damp:   C' = C + damp * mean(diag C) * I, damp = 0.01 doubled until
          ||C' inv(C') - I||_F < 0.05
  svd:    W C' = U S V^T,  Vhat = (V^T inv(C'))^T
  crop:   ipm the first r triplets, kpm the last r
  init:   S' = S / scaling; A = sqrt(S')[:,None] * Vhat^T; B = U * sqrt(S');
          W_res = W - scaling * B @ A
SVD signs are arbitrary per component, so the C test compares B @ A and
W_res, which are sign-free. The end-to-end case runs a small CNN
(conv k3 pad1 -> relu -> flatten -> linear) with torch to get each layer's
inputs (unfolded patches for the conv)."""
import numpy as np
import torch
import torch.nn.functional as F

from reflib import write_ref

rng = np.random.default_rng(11)


def cov_calls(calls):
    c = 0
    for x in calls:
        x = x / abs(x.max())
        c = c + x.T @ x
    return c / len(calls)


def damped(c):
    damp = 0.01
    while True:
        fix = c + np.eye(len(c)) * np.mean(np.diag(c)) * damp
        inv = np.linalg.inv(fix)
        if np.linalg.norm(fix @ inv - np.eye(len(c))) < 0.05:
            return fix, inv, damp
        damp *= 2


def corda(w, c, r, scaling, mode):
    fix, inv, damp = damped(c)
    u, s, vt = np.linalg.svd(w @ fix, full_matrices=False)
    vhat_t = vt @ inv
    sel = slice(0, r) if mode == "ipm" else slice(len(s) - r, len(s))
    sp = s[sel] / scaling
    a = np.sqrt(sp)[:, None] * vhat_t[sel]
    b = u[:, sel] * np.sqrt(sp)
    return a, b, w - scaling * b @ a, damp, s


def gap_ok(s, r):
    """the r-th / (r+1)-th singular values (either end) are well separated"""
    return s[r - 1] / s[r] > 1.05 and s[-r - 1] / s[-r] > 1.05


def array_case(case, out, inn, rows, n_calls, r, scaling):
    while True:
        w = rng.uniform(-1, 1, (out, inn)).astype(np.float32)
        calls = [rng.normal(0, 1, (rows, inn)).astype(np.float32) for _ in range(n_calls)]
        c = cov_calls([x.astype(np.float64) for x in calls])
        ai, bi, wi, damp, s = corda(w.astype(np.float64), c, r, scaling, "ipm")
        if gap_ok(s, r):
            break
    ak, bk, wk, _, _ = corda(w.astype(np.float64), c, r, scaling, "kpm")
    arrays = {"w": w, "cov": c, "damp": np.array([damp]), "ba_ipm": bi @ ai, "wres_ipm": wi,
              "ba_kpm": bk @ ak, "wres_kpm": wk, "sv": s}
    for i, x in enumerate(calls):
        arrays["x%d" % i] = x
    write_ref(case, arrays)


# full-rank covariance: 3 calls of 40 rows, 16 features; out > in and out < in
array_case("corda_tall", 24, 16, 40, 3, 3, 2.0)
array_case("corda_wide", 10, 16, 40, 3, 4, 0.5)
# rank-deficient covariance (6 rows, 20 features): the damping loop decides
array_case("corda_lowrank", 8, 20, 3, 2, 2, 2.0)


def cnn_case():
    """0 Conv2d(2,4,k3,pad1) -> 1 ReLU -> 2 Flatten -> 3 Linear(100,6); LoRA r=2 alpha 4 on 0 and 3."""
    x = rng.uniform(-1, 1, (5, 2, 5, 5)).astype(np.float32)
    w0 = rng.uniform(-0.5, 0.5, (4, 2, 3, 3)).astype(np.float32)
    b0 = rng.uniform(-0.5, 0.5, (4,)).astype(np.float32)
    w3 = rng.uniform(-0.2, 0.2, (6, 100)).astype(np.float32)
    b3 = rng.uniform(-0.2, 0.2, (6,)).astype(np.float32)
    r, scaling = 2, 2.0
    out = {"x": x, "0.base_layer.weight": w0, "0.base_layer.bias": b0, "3.base_layer.weight": w3,
           "3.base_layer.bias": b3}
    tx = torch.tensor(x, dtype=torch.float64)
    h = F.relu(F.conv2d(tx, torch.tensor(w0, dtype=torch.float64), torch.tensor(b0, dtype=torch.float64), padding=1))
    h = h.flatten(1).numpy()
    patches = F.unfold(tx, 3, padding=1).numpy()  # [N, C*9, L]
    c0 = cov_calls([patches[n].T for n in range(len(x))])  # one call per sample, rows = patches
    c3 = cov_calls([h[n:n + 1] for n in range(len(x))])
    for mode in ("ipm", "kpm"):
        a0, bb0, wr0, _, _ = corda(w0.reshape(4, -1).astype(np.float64), c0, r, scaling, mode)
        a3, bb3, wr3, _, _ = corda(w3.astype(np.float64), c3, r, scaling, mode)
        out["ba0_" + mode], out["wres0_" + mode] = bb0 @ a0, wr0.reshape(w0.shape)
        out["ba3_" + mode], out["wres3_" + mode] = bb3 @ a3, wr3
    out["cov0"], out["cov3"] = c0, c3
    write_ref("corda_cnn", out)


cnn_case()
