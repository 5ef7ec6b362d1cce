"""mergekit_ref — a numpy transcription of mergekit's merge algorithms
(mergekit/sparsify.py, merge_methods/generalized_task_arithmetic.py, linear.py,
slerp.py, model_stock.py) and of config.py's evaluate_setting, float32 like
mergekit on CPU (FORMATS.md section 3). Used by ref_merge.py, ref_mergekit.py
and the command-line tests; written from mergekit's code, not from graft's."""
import numpy as np

F32 = np.float32

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



def evaluate_setting(tensor_name, setting, t=0):
    if isinstance(setting, (float, int, bool, str)):
        return setting
    elif isinstance(setting, list):
        if all(isinstance(e, (int, float)) for e in setting):
            scaled = t * (len(setting) - 1)
            i0 = int(scaled)
            i1 = min(len(setting) - 1, i0 + 1)
            frac = scaled - i0
            return (1 - frac) * setting[i0] + frac * setting[i1]
        for cond in setting:
            f = cond.get("filter")
            if f is None or f == "*" or (tensor_name and f in tensor_name):
                return evaluate_setting(tensor_name, cond["value"], t)
    elif isinstance(setting, dict):
        return evaluate_setting(tensor_name, [setting], t)
    return None


def parameter(cfg, model_params, name, tensor, t, default):
    """ConfigReader.parameter: the model's own setting, then the global one."""
    for level in (model_params, cfg.get("parameters")):
        if level and name in level:
            v = evaluate_setting(tensor, level[name], t)
            if v is not None:
                return v
    return default


def peft_consensus(method, base, models, p, masks):
    """PEFT's merge_utils.ties / dare_ties (peft/utils/merge_utils.py) with a
    density per model: prune (top-k by |x|, or the injected Bernoulli mask
    divided by density), elect the sign on the unweighted pruned tensors,
    divide the agreeing weighted sum by the number that agree (>= 1)."""
    tts = []
    for i, m in enumerate(models):
        tv = (m - base).astype(F32)
        d = p["d"][i]
        if d < 1:
            if method == "ties":
                k = int(d * tv.size)
                mask = np.zeros(tv.size, F32)
                mask[np.argsort(-np.abs(tv).reshape(-1), kind="stable")[:k]] = 1
                tv = tv * mask.reshape(tv.shape)
            else:
                tv = (tv * masks[i].astype(F32)) / F32(d)
        tts.append(tv)
    t = np.stack(tts)
    majority = np.where(t.sum(axis=0) >= 0, F32(1), F32(-1))
    agree = (np.sign(t) == majority).astype(F32)
    w = np.array(p["w"], F32).reshape((-1,) + (1,) * base.ndim)
    mixed = (t * w * agree).sum(axis=0) / np.maximum(agree.sum(axis=0), F32(1))
    return (base + mixed).astype(F32)
