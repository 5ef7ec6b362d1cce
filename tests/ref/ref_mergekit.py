"""Expected per-tensor settings for tests/test_mergekit.c: the configs in
tests/data/mergekit/ are read with PyYAML and evaluated with a transcription of
mergekit's evaluate_setting and ConfigReader.parameter (mergekit/config.py):
a model's own parameter, then the global one, then the method default.
Row per tensor name: [normalize, rescale, lambda, t, weight_0, density_0, ...]
(NaN where the method has no such setting)."""
import math
import os

import numpy as np
import yaml

import mergekit_ref

from reflib import write_ref

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mergekit")
N_LAYERS = 5
SUFFIXES = ["self_attn.q_proj.weight", "mlp.up_proj.weight", "input_layernorm.weight"]
NAMES = ["model.embed_tokens.weight"] + [f"model.layers.{i}.{s}" for i in range(N_LAYERS) for s in SUFFIXES] + \
        ["model.norm.weight", "lm_head.weight"]

# method -> (normalize default, rescale default)
DEFAULTS = {"ties": (True, False), "dare_ties": (False, True), "slerp": (None, None)}


def parameter(cfg, model_params, name, tensor, t, default):
    v = mergekit_ref.parameter(cfg, model_params, name, tensor, t, None)
    return default if v is None else float(v)


def layer_t(name):
    parts = name.split(".")
    for p in parts:
        if p.isdigit():
            return int(p) / (N_LAYERS - 1)
    return 0.0


def expected(path):
    cfg = yaml.safe_load(open(path))
    method = cfg["merge_method"]
    if cfg.get("models"):
        models = cfg["models"]
    else:
        models = cfg["slices"][0]["sources"]
    merged = [m for m in models if m["model"] != cfg.get("base_model")]
    nd, rd = DEFAULTS[method]
    rows = []
    for name in NAMES:
        t = layer_t(name)
        nan = float("nan")
        row = [nan, nan, nan, nan]
        if method == "slerp":
            row[3] = parameter(cfg, None, "t", name, t, nan)
        else:
            row[0] = parameter(cfg, None, "normalize", name, t, float(nd))
            row[1] = parameter(cfg, None, "rescale", name, t, float(rd))
            row[2] = parameter(cfg, None, "lambda", name, t, 1.0)
        for m in merged:
            mp = m.get("parameters")
            if method == "slerp":
                row += [nan, nan]
            else:
                row += [parameter(cfg, mp, "weight", name, t, nan), parameter(cfg, mp, "density", name, t, 1.0)]
        rows.append(row)
    return np.array(rows, dtype=np.float64)


for f in ("formats_example", "ties", "gradient-slerp", "dare_global"):
    write_ref("mergekit_" + f.replace("-", "_"), {"expect": expected(os.path.join(DATA, f + ".yml"))})
