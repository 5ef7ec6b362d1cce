"""torch_models — the PyTorch twins of graft's architectures, with graft's
parameter names (features.*, classifier.*), shared by the reference tests
(tests/ref) and the PyTorch peers of the benchmarks and the demo (bench/)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    """graft's gr_arch_lenet for 1x28x28 inputs."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                        nn.Linear(84, n_classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def gpt2_param_shapes(V, block, n_layer, C):
    """Parameter names and shapes of graft's GPT ([out,in] Linears), state_dict order."""
    s = {"transformer.wte.weight": (V, C), "transformer.wpe.weight": (block, C)}
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        s[p + "ln_1.weight"] = (C,); s[p + "ln_1.bias"] = (C,)
        s[p + "attn.c_attn.weight"] = (3 * C, C); s[p + "attn.c_attn.bias"] = (3 * C,)
        s[p + "attn.c_proj.weight"] = (C, C); s[p + "attn.c_proj.bias"] = (C,)
        s[p + "ln_2.weight"] = (C,); s[p + "ln_2.bias"] = (C,)
        s[p + "mlp.c_fc.weight"] = (4 * C, C); s[p + "mlp.c_fc.bias"] = (4 * C,)
        s[p + "mlp.c_proj.weight"] = (C, 4 * C); s[p + "mlp.c_proj.bias"] = (C,)
    s["transformer.ln_f.weight"] = (C,); s["transformer.ln_f.bias"] = (C,)
    return s


def gpt2_draw_params(rng, V, block, n_layer, C):
    """Test weights for the GPT twin from a numpy Generator: LayerNorm gains
    1 + N(0, 0.2^2), everything else N(0, 0.3^2) (larger than GPT-2's init so
    every path carries signal); leaves with requires_grad."""
    import numpy as np
    P = {}
    for name, shape in gpt2_param_shapes(V, block, n_layer, C).items():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            a = 1 + 0.2 * rng.standard_normal(shape)
        else:
            a = 0.3 * rng.standard_normal(shape)
        P[name] = torch.tensor(a.astype(np.float32), requires_grad=True)
    return P


def prefix_lm_mask(T, S, p):
    """Visible keys of graft's gr_prefix_softmax: query i sits at q = S-T+i and
    sees key j iff j <= q or (q < p and j < p)."""
    q = torch.arange(S - T, S).unsqueeze(1)
    j = torch.arange(S).unsqueeze(0)
    return (j <= q) | ((q < p) & (j < p))


def gpt2_linear(P, name, x, lora=None):
    """nn.Linear by parameter prefix `name` ([out,in] layout); with
    lora = {"scaling": s} and P holding name.lora_A/B.weight, PEFT's LoRA."""
    if lora is not None and name + ".lora_A.weight" in P:
        y = F.linear(x, P[name + ".base_layer.weight"], P[name + ".base_layer.bias"])
        return y + lora["scaling"] * F.linear(F.linear(x, P[name + ".lora_A.weight"]), P[name + ".lora_B.weight"])
    return F.linear(x, P[name + ".weight"], P[name + ".bias"])


def gpt2_ffn(P, name, x, lora=None, ffn_adapter=None):
    """The feed-forward sublayer; with ffn_adapter = {"scale": s} and P holding
    name.adapter_{down,up}.{weight,bias}, the (scaled) parallel adapter of the
    unified view: FFN(x) + s up(relu(down(x))), the FFN under name.base_layer."""
    if ffn_adapter is None:
        return gpt2_linear(P, name + ".c_proj", F.gelu(gpt2_linear(P, name + ".c_fc", x, lora), approximate="tanh"), lora)
    base = gpt2_ffn(P, name + ".base_layer", x, lora)
    z = F.relu(F.linear(x, P[name + ".adapter_down.weight"], P[name + ".adapter_down.bias"]))
    return base + ffn_adapter["scale"] * F.linear(z, P[name + ".adapter_up.weight"], P[name + ".adapter_up.bias"])


def gpt2_forward(P, ids, n_layer, n_head, lm_prefix=0, prefix_kv=None, lora=None, ffn_adapter=None):
    """graft's GPT (graft/gpt.h) as functional PyTorch over a dict of HF-named
    tensors: logits [B,T,V]. prefix_kv [l, n_layer*2*C] (prefix tuning, PEFT's
    past_key_values layout) is prepended to every layer's keys and values;
    the real tokens keep positions 0..T-1. ffn_adapter: see gpt2_ffn."""
    B, T = ids.shape
    C = P["transformer.wte.weight"].shape[1]
    hd = C // n_head
    x = P["transformer.wte.weight"][ids] + P["transformer.wpe.weight"][:T]
    l = 0 if prefix_kv is None else prefix_kv.shape[0]
    if l:
        pkv = prefix_kv.view(l, 2 * n_layer, n_head, hd).permute(1, 2, 0, 3)  # [2L,H,l,hd]
    mask = prefix_lm_mask(T, l + T, l + lm_prefix if lm_prefix else 0)
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        h = F.layer_norm(x, (C,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], 1e-5)
        qkv = gpt2_linear(P, p + "attn.c_attn", h, lora)
        q, k, v = (t.view(B, T, n_head, hd).transpose(1, 2) for t in qkv.split(C, dim=2))
        if l:
            k = torch.cat([pkv[2 * i].expand(B, -1, -1, -1), k], dim=2)
            v = torch.cat([pkv[2 * i + 1].expand(B, -1, -1, -1), v], dim=2)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + gpt2_linear(P, p + "attn.c_proj", y, lora)
        h = F.layer_norm(x, (C,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], 1e-5)
        x = x + gpt2_ffn(P, p + "mlp", h, lora, ffn_adapter)
    x = F.layer_norm(x, (C,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], 1e-5)
    return x @ P["transformer.wte.weight"].t()


def tfjs_weights(model_dir):
    """The weights of a TF.js layers model (model.json + the files its manifest
    names), dequantized (uint8/uint16: min + scale*q; float16), by Keras name."""
    import json
    import os

    import numpy as np
    with open(os.path.join(model_dir, "model.json")) as f:
        m = json.load(f)
    out = {}
    for group in m["weightsManifest"]:
        buf = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q is None:
                a = np.frombuffer(buf, "<f4" if w["dtype"] == "float32" else "<i4", n, off).astype(np.float32)
                off += 4 * n
            elif q["dtype"] == "float16":
                a = np.frombuffer(buf, "<f2", n, off).astype(np.float32)
                off += 2 * n
            else:
                dt = "<u1" if q["dtype"] == "uint8" else "<u2"
                raw = np.frombuffer(buf, dt, n, off).astype(np.float32)
                a = np.float32(q["min"]) + np.float32(q["scale"]) * raw
                off += raw.size * (1 if q["dtype"] == "uint8" else 2)
            out[w["name"]] = a.reshape(w["shape"])
    return m, out


class KerasMobileNetV2(nn.Module):
    """Keras' MobileNetV2 (alpha 1.0, keras_applications 1.0.x as in Keras
    2.2.4), written out by hand in NCHW from the same weights: ZeroPadding
    ((0,1),(0,1)) before each stride-2 3x3, ReLU6, BN eps 1e-3, residual adds
    where stride 1 and widths match. forward() gives the out_relu features;
    head() the nsfwjs classifier on top (AvgPool 7, Dense-ReLU x2, softmax)."""

    BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, W):
        super().__init__()
        import numpy as np
        self.W = {k: torch.tensor(np.ascontiguousarray(v)) for k, v in W.items()}

    def conv(self, x, name, stride=1, pad=0, depthwise=False):
        if depthwise:
            k = self.W[name + "/depthwise_kernel"]  # [kh,kw,in,1]
            w = k.permute(2, 3, 0, 1).reshape(-1, 1, k.shape[0], k.shape[1])
            return F.conv2d(x, w, None, stride, pad, groups=k.shape[2])
        k = self.W[name + "/kernel"]  # [kh,kw,in,out]
        b = self.W.get(name + "/bias")
        return F.conv2d(x, k.permute(3, 2, 0, 1), b, stride, pad)

    def bn(self, x, name):
        g = self.W
        return F.batch_norm(x, g[name + "/moving_mean"], g[name + "/moving_variance"], g[name + "/gamma"],
                            g[name + "/beta"], False, 0.0, 1e-3)

    def block(self, x, i, t, c, stride):
        p = "expanded_conv" if i == 0 else f"block_{i}"
        h = x
        if t != 1:
            h = F.relu6(self.bn(self.conv(h, p + "_expand"), p + "_expand_BN"))
        if stride == 2:
            h = F.pad(h, (0, 1, 0, 1))
        h = self.conv(h, p + "_depthwise", stride, 1 if stride == 1 else 0, depthwise=True)
        h = F.relu6(self.bn(h, p + "_depthwise_BN"))
        h = self.bn(self.conv(h, p + "_project"), p + "_project_BN")
        return x + h if stride == 1 and x.shape[1] == c else h

    def forward(self, x):
        h = F.relu6(self.bn(self.conv(F.pad(x, (0, 1, 0, 1)), "Conv1", 2), "bn_Conv1"))
        i = 0
        for t, c, n, s in self.BLOCKS:
            for j in range(n):
                h = self.block(h, i, t, c, s if j == 0 else 1)
                i += 1
        return F.relu6(self.bn(self.conv(h, "Conv_1"), "Conv_1_bn"))

    def head(self, feat):
        h = F.avg_pool2d(feat, 7).permute(0, 2, 3, 1).flatten(1)
        for name, act in (("dense_1", F.relu), ("dense_2", F.relu), ("dense_3", None)):
            h = h @ self.W[name + "/kernel"] + self.W[name + "/bias"]
            h = act(h) if act else torch.softmax(h, 1)
        return h
