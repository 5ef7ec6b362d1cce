"""Reference merges for tests/test_merge.c: a numpy transcription of mergekit's
algorithms (mergekit/sparsify.py, merge_methods/generalized_task_arithmetic.py,
linear.py, slerp.py, model_stock.py; FORMATS.md section 3), float32 like
mergekit on CPU. Each case holds several random tensors: <tensor>.base,
<tensor>.m<i>, per-model <tensor>.w/.d/.g/.e, <tensor>.opts, random masks
<tensor>.mask<i> (injected into graft for DARE/DELLA) and the expected <tensor>.y.
opts = [normalize, rescale, lambda, t, filter_wise, rescale_inv_density]."""
import numpy as np

from mergekit_ref import GTA, F32, della_probs, gta, linear, model_stock, peft_consensus, slerp
from reflib import write_ref

rng = np.random.default_rng(1234)

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
             normalize=None, name=None, peft=False):
    sp, _, dn, dr = GTA[method]
    tensors = []
    for shape in shapes:
        base = rand(*shape)
        models = [base + rand(*shape, scale=0.1) for _ in weights]
        d = list(dens)
        p = {"w": list(weights), "d": d, "g": [0.01, 0.05, 0.1], "e": [0.1, 0.2, 0.05]}
        nz = dn if normalize is None else normalize
        opts = [float(nz), float(dr), lam, 0.5, 0.0, float(inv_d), float(peft)]
        masks = None
        if sp == "random":
            masks = [(rng.random(shape) < di).astype(F32) for di in d]
        elif sp == "della_magprune":
            masks = [(rng.random(shape) < della_probs(m - base, di, ei)).astype(F32)
                     for m, di, ei in zip(models, d, p["e"])]
        y = peft_consensus(method, base, models, p, masks) if peft else gta(method, base, models, p, opts, masks)
        tensors.append({"base": base, "models": models, "masks": masks, "p": p, "opts": opts, "y": y})
    write_case(name or "merge_" + method, tensors)


for method in GTA:
    gta_case(method)
# FORMATS 5 item 9: three 64x96 task vectors, distinct weights, densities 0.3/0.5/0.7
gta_case("ties", shapes=[(64, 96)], weights=(0.5, 0.8, 1.3), name="merge_ties_parity")
gta_case("ties", lam=0.7, normalize=False, name="merge_ties_lambda")
gta_case("dare_linear", inv_d=True, name="merge_dare_linear_invd")
gta_case("dare_ties", inv_d=True, name="merge_dare_ties_invd")
# PEFT's merge_utils semantics (unweighted sign election, divide by the agreeing count)
gta_case("ties", name="merge_ties_peft", peft=True)
gta_case("dare_ties", inv_d=True, name="merge_dare_ties_peft", peft=True)
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
