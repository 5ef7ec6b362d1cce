"""End-to-end checks of `graft finetune --peft` and `graft peft merge|unmerge`
(run by tests/cli_peft.sh).

A LeNet source model is pretrained briefly on Fashion-MNIST classes 0-4 and
adapted to classes 5-9 with LoRA, rsLoRA (on a suffix target list), DoRA,
IA3 and a bottleneck adapter. The LoRA adapter directories graft writes are
then loaded by a reimplementation of Hugging Face PEFT's loading rules (the
peft package is not installable here; written from peft/tuners/lora/
layer.py, tuners_utils.check_target_module_exists, utils/save_and_load.py,
config.py): config fields and types, the target rule (exact name or
".<suffix>", a string is a full-match regex), rank/alpha patterns matched
as (.*\\.)?(key)$, scaling alpha/r or alpha/sqrt(r), tensor keys
base_model.model.<module>.lora_A.weight / lora_B.weight with their shapes,
modules_to_save keys, no unexpected key; PEFT's merge W + scaling * B @ A
(a conv's as conv2d(A^T, B)^T) is computed in numpy and compared with
graft's merged model within 1e-5. Merged models evaluate like the adapter
models (graft eval of both directories, loss within 1e-5); merge then unmerge gives the base weights back
within 1e-6. Bad inputs give the documented exit codes and name the module.
usage: peft_cli_check.py GRAFT_BIN WORKDIR"""
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_numpy as st  # noqa: E402

GRAFT, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
PREFIX = "base_model.model."
SRC = "fmnist:classes=0-4,limit=600"
TGT = "fmnist:classes=5-9,labels=20/class"
TGT_TEST = "fmnist:split=test,classes=5-9,limit=200"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def graft(*args):
    p = subprocess.run([GRAFT, *args], capture_output=True, text=True, env={**os.environ, "GRAFT_THREADS": "1"})
    return p.returncode, p.stdout, p.stderr


def path(*p):
    return os.path.join(WORK, *p)


def finetune(name, *peft_args):
    return graft("finetune", "--from", path("src"), "--data", TGT, "--test-data", TGT_TEST, "--steps", "15",
                 "--optim", "adamw", "--lr", "0.01", "--quiet", "--out", path(name), *peft_args)


# ---- PEFT's loading rules, transcribed -------------------------------------------------
def is_target(targets, module):
    """tuners_utils.check_target_module_exists"""
    if isinstance(targets, str):
        return re.fullmatch(targets, module) is not None
    return module in targets or any(module.endswith("." + t) for t in targets)


def pattern_value(patterns, module, default):
    """tuners_utils.get_pattern_key: the first key with (.*\\.)?(key)$"""
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def peft_merged_lora(adapter_dir, base):
    """The merged state dict PEFT's merge_and_unload would give (numpy)."""
    text = open(os.path.join(adapter_dir, "adapter_config.json")).read()
    cfg = json.loads(text)
    check(text == json.dumps(cfg, indent=2, sort_keys=True) + "\n", "adapter_config.json is json.dumps(indent=2, sort_keys)")
    check(cfg["peft_type"] == "LORA", "peft_type LORA")
    for key, typ in (("r", int), ("lora_alpha", (int, float)), ("lora_dropout", (int, float)), ("use_rslora", bool),
                     ("use_dora", bool), ("fan_in_fan_out", bool), ("bias", str), ("rank_pattern", dict),
                     ("alpha_pattern", dict), ("inference_mode", bool)):
        check(isinstance(cfg.get(key), typ), f"config field {key} is a {typ}")
    check(cfg["bias"] == "none" and cfg["use_dora"] is False and cfg["fan_in_fan_out"] is False, "plain LoRA config")
    sd, _ = st.load(os.path.join(adapter_dir, "adapter_model.safetensors"))
    with open(os.path.join(adapter_dir, "adapter_model.safetensors"), "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n)).get("__metadata__")
    check(meta == {"format": "pt"}, "adapter_model.safetensors metadata format=pt")
    check(all(k.startswith(PREFIX) and ".default." not in k for k in sd), "keys are base_model.model.<...> without the adapter name")
    merged, used = dict(base), set()
    modules = sorted({k[: -len(".weight")] for k in base if k.endswith(".weight")})
    targets, save = cfg["target_modules"], cfg.get("modules_to_save") or []
    n_targets = 0
    for mod in modules:
        if not is_target(targets, mod):
            continue
        n_targets += 1
        r = pattern_value(cfg["rank_pattern"], mod, cfg["r"])
        alpha = pattern_value(cfg["alpha_pattern"], mod, cfg["lora_alpha"])
        scaling = alpha / math.sqrt(r) if cfg["use_rslora"] else alpha / r
        ka, kb = PREFIX + mod + ".lora_A.weight", PREFIX + mod + ".lora_B.weight"
        if ka not in sd or kb not in sd:
            check(False, f"{mod}: lora_A and lora_B present")
            continue
        used |= {ka, kb}
        w, a, b = base[mod + ".weight"], sd[ka], sd[kb]
        if w.ndim == 4:  # Conv2d: A [r, C_in, kh, kw], B [out, r, 1, 1]; delta = conv2d(A^T, B)^T
            check(a.shape == (r, w.shape[1], w.shape[2], w.shape[3]) and b.shape == (w.shape[0], r, 1, 1),
                  f"{mod}: conv LoRA shapes {a.shape} {b.shape}")
            delta = np.einsum("or,rckl->ockl", b[:, :, 0, 0].astype(np.float64), a.astype(np.float64))
        else:
            check(a.shape == (r, w.shape[1]) and b.shape == (w.shape[0], r), f"{mod}: LoRA shapes {a.shape} {b.shape}")
            delta = b.astype(np.float64) @ a.astype(np.float64)
        merged[mod + ".weight"] = (w + scaling * delta).astype(np.float32)
    check(n_targets > 0, f"target_modules {targets} select {n_targets} modules of the base")
    for k, v in sd.items():  # modules_to_save: base_model.model.<module>.<param>
        if k in used:
            continue
        name = k[len(PREFIX):]
        mod = name.rsplit(".", 1)[0]
        ok = name in base and base[name].shape == v.shape and is_target(save, mod)
        check(ok, f"{k} is a modules_to_save tensor of the base")
        merged[name] = v
        used.add(k)
    check(used == set(sd), "no unexpected adapter key")
    return merged, cfg


def close(a, b, atol, rtol=0.0):
    return a.shape == b.shape and bool(np.all(np.abs(a.astype(np.float64) - b) <= atol + rtol * np.abs(b)))


def eval_loss(model_dir):
    rc, out, err = graft("eval", "--model", model_dir, "--data", TGT_TEST, "--json")
    return json.loads(out)["loss"] if rc == 0 else float("nan")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    rc, out, err = graft("train", "--model", "lenet", "--data", SRC, "--steps", "15", "--quiet", "--out", path("src"))
    check(rc == 0, "pretrain LeNet " + err.strip())
    base, _ = st.load(path("src", "model.safetensors"))
    runs = {"lora": ("--peft", "lora", "--r", "4", "--lora-alpha", "8"),
            "rslora": ("--peft", "rslora", "--r", "3", "--lora-alpha", "6", "--target-modules", "0,features.3"),
            "dora": ("--peft", "dora", "--r", "2"),
            "ia3": ("--peft", "ia3", "--feedforward-modules", "classifier.0"),
            "adapter": ("--peft", "adapter", "--r", "4")}
    for name, args in runs.items():
        rc, out, err = finetune("ft_" + name, *args)
        check(rc == 0 and "adapter_config.json" in out, f"finetune --peft {name} writes an adapter dir {err.strip()}")

    icfg = json.load(open(path("ft_ia3", "adapter_config.json")))
    isd, _ = st.load(path("ft_ia3", "adapter_model.safetensors"))
    check(icfg["peft_type"] == "IA3" and icfg["feedforward_modules"] == ["classifier.0"]
          and isd[PREFIX + "classifier.0.ia3_l"].shape == (1, 400) and isd[PREFIX + "classifier.2.ia3_l"].shape == (84, 1)
          and isd[PREFIX + "features.3.ia3_l"].shape == (1, 16, 1, 1),
          "IA3 dir: feedforward_modules, ia3_l [1,in] / [out,1] / conv [1,C,1,1] as PEFT")
    for name in ("lora", "rslora"):
        merged_ref, cfg = peft_merged_lora(path("ft_" + name), base)
        if name == "rslora":
            check(cfg["use_rslora"] and sorted(cfg["target_modules"]) == ["classifier.0", "features.0", "features.3"],
                  f"--target-modules 0,features.3 by PEFT's suffix rule: {cfg['target_modules']}")
        rc, out, err = graft("peft", "merge", "--base", path("src"), "--adapter", path("ft_" + name), "--out", path("mg_" + name))
        check(rc == 0, f"peft merge {name} {err.strip()}")
        mg, _ = st.load(path("mg_" + name, "model.safetensors"))
        check(set(mg) == set(base), f"{name}: merged model has the base's tensor names")
        bad = [k for k in base if k not in mg or not close(mg[k], merged_ref[k], 1e-5, 1e-5)]
        worst = max(float(np.max(np.abs(mg[k] - merged_ref[k]))) for k in base if k in mg and mg[k].shape == merged_ref[k].shape)
        check(not bad, f"{name}: graft's merged weights = PEFT's rules in numpy within 1e-5 (max abs err {worst:.2e}; off: {bad})")

    for name in ("lora", "rslora", "dora", "ia3"):
        if name in ("dora", "ia3"):
            rc, out, err = graft("peft", "merge", "--base", path("src"), "--adapter", path("ft_" + name), "--out", path("mg_" + name))
            check(rc == 0, f"peft merge {name} {err.strip()}")
        d = abs(eval_loss(path("mg_" + name)) - eval_loss(path("ft_" + name)))
        check(d <= 1e-5, f"{name}: merged model's test loss = adapter model's, both by graft eval (|diff| {d:.2e} <= 1e-5)")
        rc, out, err = graft("peft", "unmerge", "--model", path("mg_" + name), "--adapter", path("ft_" + name), "--out", path("um_" + name))
        check(rc == 0, f"peft unmerge {name} {err.strip()}")
        um, _ = st.load(path("um_" + name, "model.safetensors"))
        worst = max(float(np.max(np.abs(um[k] - base[k]))) for k in base if not k.startswith("classifier.4"))
        check(worst <= 1e-6, f"{name}: merge -> unmerge gives the base weights back (max abs err {worst:.2e} <= 1e-6)")

    check(math.isfinite(eval_loss(path("ft_adapter"))), "graft eval loads a bottleneck-adapter run directory")

    # ---- bad input -------------------------------------------------------------------
    rc, out, err = finetune("bad1", "--peft", "lora", "--target-modules", "nomatch")
    check(rc == 1 and "nomatch" in err, f"target_modules matching nothing: exit 1 naming it ({rc}: {err.strip()})")
    rc, out, err = finetune("bad2", "--peft", "dora", "--r", "500")
    check(rc == 1 and "features.0" in err and "r=500" in err, f"r larger than the layer: exit 1 naming the module ({err.strip()})")
    rc, out, err = finetune("bad3", "--peft", "bogus")
    check(rc == 2, f"unknown --peft method: exit 2 ({rc})")
    rc, out, err = graft("peft", "merge", "--base", path("src"), "--adapter", path("ft_adapter"), "--out", path("bad4"))
    check(rc == 1 and "features.0" in err and not os.path.exists(path("bad4")),
          f"merging a bottleneck adapter: exit 1 naming the module, no output ({err.strip()})")
    rc, out, err = graft("train", "--model", "mlp", "--data", SRC, "--steps", "2", "--quiet", "--out", path("mlp"))
    rc, out, err = graft("peft", "merge", "--base", path("mlp"), "--adapter", path("ft_lora"), "--out", path("bad5"))
    check(rc == 1 and ("features.0" in err or "classifier.0" in err),
          f"adapter for another base: exit 1 naming the module ({err.strip()})")
    shutil.copytree(path("ft_lora"), path("lora_wide"))
    cfg = json.load(open(path("lora_wide", "adapter_config.json")))
    sd, _ = st.load(path("lora_wide", "adapter_model.safetensors"))
    sd[PREFIX + "classifier.0.lora_A.weight"] = np.zeros((4, 401), np.float32)
    st.save(path("lora_wide", "adapter_model.safetensors"), sd)
    rc, out, err = graft("peft", "merge", "--base", path("src"), "--adapter", path("lora_wide"), "--out", path("bad6"))
    check(rc == 1 and "classifier.0.lora_A" in err, f"adapter/base shape mismatch: exit 1 naming the module ({err.strip()})")
    rc, out, err = graft("peft", "merge", "--base", path("src"), "--out", path("bad7"))
    check(rc == 2, f"peft merge without --adapter: exit 2 ({rc})")
    os.remove(path("mg_dora", "dora_weight_norm.safetensors"))
    rc, out, err = graft("peft", "unmerge", "--model", path("mg_dora"), "--adapter", path("ft_dora"), "--out", path("bad8"))
    check(rc == 1 and "DoRA" in err, f"DoRA unmerge without the saved norms: exit 1 ({err.strip()})")
    del cfg
    if failures:
        print(f"{len(failures)} failed")
        sys.exit(1)
    shutil.rmtree(WORK, ignore_errors=True)
    print("all passed")


main()
