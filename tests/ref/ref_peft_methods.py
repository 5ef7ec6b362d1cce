"""Reference values for DoRA, IA3 and bottleneck adapters (tests/test_peft_methods.c).

Hugging Face PEFT cannot be installed here, so its math is written out in
torch following FORMATS.md §2.3 and PEFT's sources (tuners/lora/dora.py,
tuners/ia3/layer.py); the adapters follow the unified-view paper (He et al.
2022) and its code (petl_factory.Adapter_Layer):
  DoRA    y = base(x) + (g - 1) * (W x) + g * s * B(A(x)),
          g = m / ||W + s B A||_row  (the norm detached; conv: norm over
          dims 1,2,3, m [1,out,1,1])
  IA3     y = base(x) * l  (l [out,1], conv [1,C,1,1]) or base(x * l)
          for feed-forward modules (l [1,in], conv [1,C_in,1,1])
  adapter sequential  y = h + s * up(relu(down(h))), h = base(x)
          parallel    y = base(x) + s * up(relu(down(x)))
Arrays are named after graft's parameters (<path>.base_layer.weight,
<path>.lora_magnitude_vector, <path>.ia3_l, <path>.adapter_down.weight, ...)
so the C test loads them by name; 'd<name>' is the gradient of sum(y * gy).
'merged.<path>.weight' / '.bias' are PEFT's merged base weights
(dora: (m/||W+sBA||) (W + sBA); ia3: W*l (rows or columns), bias*l for
output scaling)."""
import numpy as np
import torch
import torch.nn.functional as F

from reflib import write_ref

rng = np.random.default_rng(11)


def r(*s, scale=0.5):
    return (rng.uniform(-1, 1, size=s) * scale).astype(np.float32)


def rpos(*s):
    return rng.uniform(0.5, 1.5, size=s).astype(np.float32)


def base(p, path, x, conv, pad=1):
    w, b = p[path + ".base_layer.weight"], p[path + ".base_layer.bias"]
    return F.conv2d(x, w, b, padding=pad) if conv else F.linear(x, w, b)


# ---- DoRA -------------------------------------------------------------------
def dora_norm(w, a, b, s, conv):
    if conv:
        lw = (b.flatten(1) @ a.flatten(1)).reshape(w.shape)
        return (w + s * lw).norm(p=2, dim=(1, 2, 3), keepdim=True).transpose(1, 0)
    return torch.linalg.norm(w + s * (b @ a), dim=1)


def dora(p, path, x, s, conv, pad=1):
    w, a, b = p[path + ".base_layer.weight"], p[path + ".lora_A.weight"], p[path + ".lora_B.weight"]
    m = p[path + ".lora_magnitude_vector"]
    g = m / dora_norm(w, a, b.detach(), s, conv).detach()
    if conv:
        wx = F.conv2d(x, w, None, padding=pad)
        ba = F.conv2d(F.conv2d(x, a, padding=pad), b)
    else:
        g = g.view(1, -1)
        wx = F.linear(x, w)
        ba = F.linear(F.linear(x, a), b)
    return base(p, path, x, conv, pad) + (g - 1) * wx + g * ba * s


def dora_merged(p, path, s, conv):
    w, a, b = (p[path + k].detach() for k in (".base_layer.weight", ".lora_A.weight", ".lora_B.weight"))
    m = p[path + ".lora_magnitude_vector"].detach()
    lw = (b.flatten(1) @ a.flatten(1)).reshape(w.shape)
    norm = dora_norm(w, a, b, s, conv)
    factor = (m / norm).reshape(-1, *([1] * (w.dim() - 1)))
    return factor * (w + s * lw)


# ---- IA3 --------------------------------------------------------------------
def ia3(p, path, x, ff, conv, pad=1):
    l = p[path + ".ia3_l"]
    lv = l if conv else l.flatten()
    return base(p, path, x * lv, conv, pad) if ff else base(p, path, x, conv, pad) * lv


def ia3_merged(p, path, ff, conv):
    w, b, l = (p[path + k].detach() for k in (".base_layer.weight", ".base_layer.bias", ".ia3_l"))
    if conv:
        scale = l if ff else l.permute(1, 0, 2, 3)
    else:
        scale = l  # [1,in] scales columns, [out,1] rows
    return w * scale, b if ff else b * l.reshape(b.shape)


# ---- bottleneck adapters ------------------------------------------------------
def adapter(p, path, x, parallel, s, conv, pad=1):
    h = base(p, path, x, conv, pad)
    z = x if parallel else h
    dw, db = p[path + ".adapter_down.weight"], p[path + ".adapter_down.bias"]
    uw, ub = p[path + ".adapter_up.weight"], p[path + ".adapter_up.bias"]
    if conv:
        d = F.conv2d(z, dw, db, padding=pad if parallel else 0)
        u = F.conv2d(F.relu(d), uw, ub)
    else:
        u = F.linear(F.relu(F.linear(z, dw, db)), uw, ub)
    return h + s * u


# ---- cases --------------------------------------------------------------------
def run_case(case, arrays, forward, merged=None):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    y = forward(t)
    gy = torch.tensor(r(*y.shape, scale=1.0))
    y.backward(gy)
    out = dict(t)
    out["y"] = y
    out["gy"] = gy
    for k, v in t.items():
        out["d" + k] = v.grad
    if merged:
        out.update(merged(t))
    write_ref(case, out)


def mlp_params(extra):
    """layers.0 Linear(6,8) + ReLU + layers.2 Linear(8,5); extra(path, fin, fout) adds adapter arrays."""
    a = {"x": r(4, 6, scale=1.0)}
    for path, fin, fout in (("layers.0", 6, 8), ("layers.2", 8, 5)):
        a[path + ".base_layer.weight"] = r(fout, fin)
        a[path + ".base_layer.bias"] = r(fout)
        a.update(extra(path, fin, fout))
    return a


def cnn_params(extra):
    """0 Conv2d(2,4,k3,pad1) + 1 ReLU + 2 Flatten + 3 Linear(100,3)."""
    a = {"x": r(2, 2, 5, 5, scale=1.0),
         "0.base_layer.weight": r(4, 2, 3, 3), "0.base_layer.bias": r(4),
         "3.base_layer.weight": r(3, 100, scale=0.2), "3.base_layer.bias": r(3)}
    a.update(extra("0", 2, 4, True))
    a.update(extra("3", 100, 3, False))
    return a


def mlp_fwd(layer):
    return lambda p: layer(p, "layers.2", F.relu(layer(p, "layers.0", p["x"], False)), False)


def cnn_fwd(layer):
    return lambda p: layer(p, "3", F.relu(layer(p, "0", p["x"], True)).flatten(1), False)


# DoRA: r 2 on the first layer, 3 on the second (MLP); alpha 4 -> s = 2, 4/3
def dora_extra(ranks):
    def extra(path, fin, fout, conv=False):
        rk = ranks[path]
        if conv:
            return {path + ".lora_A.weight": r(rk, fin, 3, 3), path + ".lora_B.weight": r(fout, rk, 1, 1),
                    path + ".lora_magnitude_vector": rpos(1, fout, 1, 1)}
        return {path + ".lora_A.weight": r(rk, fin), path + ".lora_B.weight": r(fout, rk),
                path + ".lora_magnitude_vector": rpos(fout)}
    return extra


mr = {"layers.0": 2, "layers.2": 3}
ms = {k: 4.0 / v for k, v in mr.items()}
run_case("dora_mlp", mlp_params(dora_extra(mr)), mlp_fwd(lambda p, path, x, c: dora(p, path, x, ms[path], c)),
         lambda p: {"merged." + k + ".weight": dora_merged(p, k, ms[k], False) for k in mr})
cr = {"0": 2, "3": 2}
run_case("dora_cnn", cnn_params(dora_extra(cr)), cnn_fwd(lambda p, path, x, c: dora(p, path, x, 4.0, c)),
         lambda p: {"merged.0.weight": dora_merged(p, "0", 4.0, True), "merged.3.weight": dora_merged(p, "3", 4.0, False)})


# IA3: ff marks the feed-forward (input-scaling) modules
def ia3_extra(ff):
    def extra(path, fin, fout, conv=False):
        if conv:
            return {path + ".ia3_l": r(1, fin if path in ff else fout, 1, 1, scale=1.5)}
        return {path + ".ia3_l": r(1, fin, scale=1.5) if path in ff else r(fout, 1, scale=1.5)}
    return extra


def ia3_merged_all(paths, ff, convs):
    def merged(p):
        out = {}
        for k in paths:
            w, b = ia3_merged(p, k, k in ff, k in convs)
            out["merged." + k + ".weight"], out["merged." + k + ".bias"] = w, b
        return out
    return merged


for case, ff in (("ia3_mlp", {"layers.2"}), ("ia3_mlp_ff0", {"layers.0"})):
    run_case(case, mlp_params(ia3_extra(ff)), mlp_fwd(lambda p, path, x, c, ff=ff: ia3(p, path, x, path in ff, c)),
             ia3_merged_all(("layers.0", "layers.2"), ff, set()))
for case, ff in (("ia3_cnn", {"3"}), ("ia3_cnn_ff0", {"0"})):
    run_case(case, cnn_params(ia3_extra(ff)), cnn_fwd(lambda p, path, x, c, ff=ff: ia3(p, path, x, path in ff, c)),
             ia3_merged_all(("0", "3"), ff, {"0"}))


# adapters: r 3 (MLP) / 2 (CNN)
def adapter_extra(rk, parallel):
    def extra(path, fin, fout, conv=False):
        width = fin if parallel else fout
        if conv:
            dw = r(rk, width, 3, 3) if parallel else r(rk, width, 1, 1)
            return {path + ".adapter_down.weight": dw, path + ".adapter_down.bias": r(rk),
                    path + ".adapter_up.weight": r(fout, rk, 1, 1), path + ".adapter_up.bias": r(fout)}
        return {path + ".adapter_down.weight": r(rk, width), path + ".adapter_down.bias": r(rk),
                path + ".adapter_up.weight": r(fout, rk), path + ".adapter_up.bias": r(fout)}
    return extra


for case, parallel, s in (("adapter_seq", False, 1.0), ("adapter_par", True, 1.0), ("adapter_scaled", True, 4.0)):
    run_case(case + "_mlp", mlp_params(adapter_extra(3, parallel)),
             mlp_fwd(lambda p, path, x, c, par=parallel, s=s: adapter(p, path, x, par, s, c)))
    run_case(case + "_cnn", cnn_params(adapter_extra(2, parallel)),
             cnn_fwd(lambda p, path, x, c, par=parallel, s=s: adapter(p, path, x, par, s, c)))
