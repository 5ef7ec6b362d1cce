"""Reference merges for tests/test_merge.c: a numpy transcription of mergekit's
algorithms (mergekit/sparsify.py, merge_methods/generalized_task_arithmetic.py,
linear.py, slerp.py, model_stock.py; FORMATS.md section 3), float32 like
mergekit on CPU. Each case holds several random tensors: <tensor>.base,
<tensor>.m<i>, per-model <tensor>.w/.d/.g/.e, <tensor>.opts, random masks
<tensor>.mask<i> (injected into graft for DARE/DELLA) and the expected <tensor>.y.
opts = [normalize, rescale, lambda, t, filter_wise, rescale_inv_density]."""
import numpy as np

from reflib import write_ref

F32 = np.float32
rng = np.random.default_rng(1234)

# method -> (sparsifier, consensus, default normalize, default rescale)
GTA = {
    "task_arithmetic": (None, None, False, False),
    "ties": ("magnitude", "sum", True, False),
    "dare_ties": ("random", "sum", False, True),
    "dare_linear": ("random", None, False, True),
    "breadcrumbs": ("magnitude_outliers", None, False, False),
    "breadcrumbs_ties": ("magnitude_outliers", "sum", False, False),
    "della": ("della_magprune", "sum", True, True),
    "della_linear": ("della_magprune", None, False, True),
}


def rescaled_masked(t, mask, rescale, eps=1e-7):
    masked = t * mask
    if not rescale:
        return masked
    before = np.abs(t).sum(dtype=F32)
    after = np.abs(masked).sum(dtype=F32)
    if before < eps or after < eps:
        return masked
    return masked * F32(before / after)


def magnitude(t, d, rescale):
    if d >= 1:
        return t
    k = int(d * t.size)
    assert k > 0
    w = np.abs(t).reshape(-1)
    top = np.argsort(-w, kind="stable")[:k]
    mask = np.zeros(t.size, F32)
    mask[top] = 1
    return rescaled_masked(t, mask.reshape(t.shape), rescale)


def magnitude_outliers(t, d, rescale, gamma):
    if d >= 1:
        return t
    n = t.size
    target = int(d * n)
    n_top = int(gamma * n)
    n_bot = n - target - n_top
    if n_bot < 0:
        n_top += n_bot
        n_bot = 0
    idx = np.argsort(np.abs(t).reshape(-1), kind="stable")
    mask = np.zeros(n, F32)
    mask[idx[n_bot:-n_top]] = 1  # n_top == 0 gives an empty slice: mergekit's quirk
    return rescaled_masked(t, mask.reshape(t.shape), rescale)


def della_probs(t, d, eps):
    x = t if t.ndim >= 2 else t.reshape(1, -1)
    ranks = np.argsort(np.argsort(np.abs(x), axis=1, kind="stable"), axis=1).astype(F32) + 1
    lo, hi = ranks.min(axis=1, keepdims=True), ranks.max(axis=1, keepdims=True)
    rank_norm = np.clip((ranks - lo) / (hi - lo), 0, 1)
    return ((d - eps) + rank_norm * 2 * eps).reshape(t.shape)


def random_sparse(t, d, rescale, mask):
    if d >= 1:
        return t
    return rescaled_masked(t, mask.astype(F32), rescale)


def gta(method, base, models, p, opts, masks):
    sp, consensus, _, _ = GTA[method]
    normalize, rescale, lam = bool(opts[0]), bool(opts[1]), opts[2]
    inv_d = bool(opts[5])
    deltas = []
    for i, m in enumerate(models):
        tv = (m - base).astype(F32)
        d = p["d"][i]
        if sp == "magnitude":
            tv = magnitude(tv, d, rescale)
        elif sp == "magnitude_outliers":
            tv = magnitude_outliers(tv, d, rescale, p["g"][i])
        elif sp in ("random", "della_magprune"):
            if d < 1:
                tv = tv * masks[i].astype(F32)
                if rescale:
                    if inv_d:
                        tv = tv * F32(1.0 / d)
                    else:
                        tv = rescaled_masked((m - base).astype(F32), masks[i].astype(F32), True)
        deltas.append(tv)
    deltas = np.stack(deltas)
    weights = np.array(p["w"], F32).reshape((-1,) + (1,) * base.ndim)
    wd = deltas * weights
    if consensus:
        sign = np.sign(wd)
        majority = np.where(wd.sum(axis=0) >= 0, F32(1), F32(-1))
        mask = (sign == majority).astype(F32)
        mixed = (wd * mask).sum(axis=0)
        div = (weights * mask).sum(axis=0)
        div[div == 0] = 1
    else:
        mixed = wd.sum(axis=0)
        div = weights.sum(axis=0)
        div[np.abs(div) < 1e-8] = 1
    if normalize:
        mixed = mixed / div
    if lam != 1:
        mixed = mixed * F32(lam)
    return (base + mixed).astype(F32)


def linear(models, w, normalize):
    t = np.stack(models)
    wt = np.array(w, F32).reshape((-1,) + (1,) * models[0].ndim)
    res = (wt * t).sum(axis=0)
    if normalize:
        res = res / wt.sum(axis=0)
    return res.astype(F32)


def slerp(t, v0, v1, DOT_THRESHOLD=0.9995, eps=1e-8):
    def normalize(v):
        n = np.linalg.norm(v)
        return v / n if n > eps else v

    c0, c1 = np.copy(v0), np.copy(v1)
    dot = np.sum(normalize(v0) * normalize(v1))
    if np.abs(dot) > DOT_THRESHOLD:
        return ((1 - t) * c0 + t * c1).astype(F32)
    th0 = np.arccos(dot)
    s0 = np.sin(th0 - th0 * t) / np.sin(th0)
    s1 = np.sin(th0 * t) / np.sin(th0)
    return (s0 * c0 + s1 * c1).astype(F32)


def model_stock(base, models, filter_wise):
    shape = base.shape
    if filter_wise:
        w0 = base.reshape(1, -1) if base.ndim == 1 else base
        ws = [m.reshape(1, -1) if m.ndim == 1 else m for m in models]
    else:
        w0 = base.reshape(-1)
        ws = [m.reshape(-1) for m in models]
    offs = [w - w0 for w in ws]
    cos = []
    for i in range(len(offs)):
        for j in range(i + 1, len(offs)):
            npd = np.linalg.norm(offs[i], axis=-1) * np.linalg.norm(offs[j], axis=-1)
            cos.append(np.clip((offs[i] * offs[j]).sum(axis=-1) / np.maximum(npd, 1e-6), -1, 1))
    c = np.stack(cos).mean(axis=0)[..., None]
    N = len(ws)
    t = (N * c) / (1 + (N - 1) * c)
    avg = sum(ws) / N
    return (t * avg + (1 - t) * w0).reshape(shape).astype(F32)


def rand(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(F32)


def write_case(name, tensors):
    arrays = {"meta": [len(tensors), len(tensors[0]["models"])]}
    for k, t in enumerate(tensors):
        pre = f"t{k}."
        arrays[pre + "base"] = t["base"]
        for i, m in enumerate(t["models"]):
            arrays[pre + f"m{i}"] = m
            if t.get("masks") is not None:
                arrays[pre + f"mask{i}"] = t["masks"][i]
        for key in "wdge":
            arrays[pre + key] = t["p"][key]
        arrays[pre + "opts"] = t["opts"]
        arrays[pre + "y"] = t["y"]
    write_ref(name, arrays)


SHAPES = [(64, 96), (7,), (3, 5, 40)]


def gta_case(method, shapes=SHAPES, weights=(0.6, -0.3, 1.1), dens=(0.3, 0.5, 0.7), inv_d=False, lam=1.0,
             normalize=None, name=None):
    sp, _, dn, dr = GTA[method]
    tensors = []
    for shape in shapes:
        base = rand(*shape)
        models = [base + rand(*shape, scale=0.1) for _ in weights]
        d = list(dens)
        p = {"w": list(weights), "d": d, "g": [0.01, 0.05, 0.1], "e": [0.1, 0.2, 0.05]}
        nz = dn if normalize is None else normalize
        opts = [float(nz), float(dr), lam, 0.5, 0.0, float(inv_d)]
        masks = None
        if sp == "random":
            masks = [(rng.random(shape) < di).astype(F32) for di in d]
        elif sp == "della_magprune":
            masks = [(rng.random(shape) < della_probs(m - base, di, ei)).astype(F32)
                     for m, di, ei in zip(models, d, p["e"])]
        y = gta(method, base, models, p, opts, masks)
        tensors.append({"base": base, "models": models, "masks": masks, "p": p, "opts": opts, "y": y})
    write_case(name or "merge_" + method, tensors)


for method in GTA:
    gta_case(method)
# FORMATS 5 item 9: three 64x96 task vectors, distinct weights, densities 0.3/0.5/0.7
gta_case("ties", shapes=[(64, 96)], weights=(0.5, 0.8, 1.3), name="merge_ties_parity")
gta_case("ties", lam=0.7, normalize=False, name="merge_ties_lambda")
gta_case("dare_linear", inv_d=True, name="merge_dare_linear_invd")
gta_case("dare_ties", inv_d=True, name="merge_dare_ties_invd")
gta_case("task_arithmetic", lam=0.4, weights=(1.0, 1.0, 1.0), name="merge_task_arithmetic_lambda")


def plain_case(name, shapes, fn, n_models, opts, weights=None, models_fn=None):
    tensors = []
    for shape in shapes:
        base = rand(*shape)
        models = models_fn(base) if models_fn else [base + rand(*shape, scale=0.3) for _ in range(n_models)]
        w = list(weights or [1.0] * len(models))
        p = {"w": w, "d": [1.0] * len(models), "g": [0.01] * len(models), "e": [0.15] * len(models)}
        tensors.append({"base": base, "models": models, "p": p, "opts": opts, "y": fn(base, models, w)})
    write_case(name, tensors)


plain_case("merge_linear", SHAPES, lambda b, m, w: linear(m, w, True), 3, [1, 0, 1, 0.5, 0, 0], weights=[0.2, 0.5, 1.3])
plain_case("merge_linear_sum", SHAPES, lambda b, m, w: linear(m, w, False), 2, [0, 0, 1, 0.5, 0, 0], weights=[0.7, 0.3])
for t in (0.0, 0.3, 1.0):
    plain_case(f"merge_slerp_t{t}", SHAPES, lambda b, m, w, t=t: slerp(t, b, m[0]), 1, [0, 0, 1, t, 0, 0])
plain_case("merge_slerp_colinear", SHAPES, lambda b, m, w: slerp(0.3, b, m[0]), 1, [0, 0, 1, 0.3, 0, 0],
           models_fn=lambda b: [2 * b])
plain_case("merge_slerp_antiparallel", SHAPES, lambda b, m, w: slerp(0.3, b, m[0]), 1, [0, 0, 1, 0.3, 0, 0],
           models_fn=lambda b: [-0.5 * b])
plain_case("merge_model_stock", SHAPES, lambda b, m, w: model_stock(b, m, False), 3, [0, 0, 1, 0.5, 0, 0])
plain_case("merge_model_stock_rows", SHAPES, lambda b, m, w: model_stock(b, m, True), 3, [0, 0, 1, 0.5, 1, 0])
# one offset is zero: the norm product is clamped at 1e-6 and its cosines are 0
plain_case("merge_model_stock_clamp", [(5, 6)], lambda b, m, w: model_stock(b, m, False), 3, [0, 0, 1, 0.5, 0, 0],
           models_fn=lambda b: [b.copy(), b + rand(*b.shape, scale=0.3), b + rand(*b.shape, scale=0.3)])
