"""End-to-end checks of `graft merge`, `graft taskvec` and `graft rebase`
(run by tests/cli_merge.sh): small synthetic models in safetensors (one of
them sharded), mergekit YAML configs, graft's outputs compared with
tests/ref/mergekit_ref.py (a numpy transcription of mergekit), and the bad
inputs: missing tensors, dtype and shape mismatches, missing files, unknown
methods/parameters, and an output directory that is never half-written.
usage: merge_cli_check.py GRAFT_BIN WORKDIR"""
import os
import shutil
import subprocess
import sys

import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
import mergekit_ref as mk  # noqa: E402
import st_numpy as st  # noqa: E402

GRAFT, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
N_LAYERS = 4
rng = np.random.default_rng(7)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def model_tensors(scale=0.0, base=None):
    shapes = {"model.embed_tokens.weight": (12, 8), "model.norm.weight": (8,), "lm_head.weight": (12, 8)}
    for i in range(N_LAYERS):
        shapes[f"model.layers.{i}.self_attn.q_proj.weight"] = (8, 8)
        shapes[f"model.layers.{i}.mlp.up_proj.weight"] = (16, 8)
        shapes[f"model.layers.{i}.input_layernorm.weight"] = (8,)
    out = {}
    for k, s in shapes.items():
        out[k] = (base[k] + rng.standard_normal(s).astype(np.float32) * scale) if base else \
            rng.standard_normal(s).astype(np.float32)
    out["model.rotary.inv_freq_ids"] = np.arange(10, dtype=np.int64)
    return out


def layer_t(name):
    for p in name.split("."):
        if p.isdigit():
            return int(p) / (N_LAYERS - 1)
    return 0.0


def graft(*args, ok=True):
    r = subprocess.run([GRAFT] + list(args), capture_output=True, text=True, cwd=WORK)
    if ok and r.returncode != 0:
        print(r.stdout, r.stderr)
    return r


def write_cfg(name, cfg):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        if isinstance(cfg, str):
            f.write(cfg)
        else:
            yaml.safe_dump(cfg, f)
    return path


def expected_merge(cfg, models):
    """What mergekit computes for every tensor of the base (GTA, linear, slerp, model_stock)."""
    method = cfg["merge_method"]
    base_name = cfg.get("base_model")
    base = models[base_name] if base_name else None
    entries = [m for m in cfg["models"] if m["model"] != base_name or method == "linear"]
    out = {}
    ref = base if base is not None else models[entries[0]["model"]]
    for name, b in ref.items():
        if b.dtype != np.float32:
            out[name] = b
            continue
        t = layer_t(name)
        ins = [models[e["model"]][name] for e in entries]
        par = lambda e, key, d: mk.parameter(cfg, e.get("parameters"), key, name, t, d)  # noqa: E731
        glob = lambda key, d: mk.parameter(cfg, None, key, name, t, d)  # noqa: E731
        if method in mk.GTA:
            _, _, nd, rd = mk.GTA[method]
            keep = [i for i, x in enumerate(ins) if x.shape == b.shape]
            p = {"w": [par(entries[i], "weight", None) for i in keep], "d": [par(entries[i], "density", 1.0) for i in keep],
                 "g": [par(entries[i], "gamma", 0.01) for i in keep], "e": [par(entries[i], "epsilon", 0.15) for i in keep]}
            opts = [float(glob("normalize", nd)), float(glob("rescale", rd)), glob("lambda", 1.0), 0, 0, 0]
            out[name] = mk.gta(method, b, [ins[i] for i in keep], p, opts, None) if keep else b
        elif method == "linear":
            out[name] = mk.linear(ins, [par(e, "weight", None) for e in entries], bool(glob("normalize", True)))
        elif method == "slerp":
            out[name] = mk.slerp(glob("t", None), b, ins[0])
        elif method == "model_stock":
            out[name] = mk.model_stock(b, ins, bool(glob("filter_wise", False)))
    return out


def expected_peft_ties(cfg, models):
    """PEFT's merge_utils.ties on every float tensor, settings evaluated like mergekit."""
    base = models[cfg["base_model"]]
    out = {}
    for name, b in base.items():
        if b.dtype != np.float32:
            out[name] = b
            continue
        t = layer_t(name)
        es = cfg["models"]
        p = {"w": [mk.parameter(cfg, e.get("parameters"), "weight", name, t, None) for e in es],
             "d": [mk.parameter(cfg, e.get("parameters"), "density", name, t, 1.0) for e in es]}
        out[name] = mk.peft_consensus("ties", b, [models[e["model"]][name] for e in es], p, None)
    return out


def compare(out_dir, want, what, rtol=1e-5, atol=1e-6):
    got, dtypes = st.load_model(out_dir)
    same_keys = sorted(got) == sorted(want)
    check(same_keys, f"{what}: tensor names")
    worst = 0.0
    for k in want:
        if k not in got:
            continue
        g, w = np.asarray(got[k], np.float64), np.asarray(want[k], np.float64)
        if g.shape != w.shape:
            worst = np.inf
            continue
        worst = max(worst, float(np.max(np.abs(g - w) - (atol + rtol * np.abs(w)), initial=-1)))
    check(worst <= 0, f"{what}: values within rtol {rtol} (worst excess {worst:.3g})")
    return got, dtypes


def no_tmp_left(parent):
    return not [d for d in os.listdir(parent) if ".tmp-" in d or ".old-" in d]


def setup_models():
    base = model_tensors()
    models = {"base": base}
    for i in range(3):
        models[f"m{i}"] = model_tensors(0.1, base)
    for name, m in models.items():
        st.save_model(os.path.join(WORK, name), m, shards=2 if name == "base" else 1)
    open(os.path.join(WORK, "base", "config.json"), "w").write('{"model_type": "toy"}')
    open(os.path.join(WORK, "m0", "config.json"), "w").write('{"model_type": "toy0"}')
    open(os.path.join(WORK, "m1", "tokenizer.json"), "w").write('{"version": "1.0"}')
    return models


def check_methods(models):
    cfgs = {
        "ties": {"merge_method": "ties", "base_model": "base", "parameters": {"normalize": True, "int8_mask": True},
                 "models": [{"model": "m0", "parameters": {"weight": 0.6, "density": [0.9, 0.3]}},
                            {"model": "m1", "parameters": {"weight": [0.2, 0.8], "density": 0.5}},
                            {"model": "m2", "parameters": {"density": 0.7, "weight": [{"filter": "mlp", "value": 0.5},
                                                                                      {"value": 0.25}]}}]},
        "task_arithmetic": {"merge_method": "task_arithmetic", "base_model": "base", "parameters": {"lambda": 0.7},
                            "models": [{"model": "m0", "parameters": {"weight": 1.0}},
                                       {"model": "m1", "parameters": {"weight": -0.5}}]},
        "linear": {"merge_method": "linear", "models": [{"model": "m0", "parameters": {"weight": 0.3}},
                                                        {"model": "m1", "parameters": {"weight": 0.7}}]},
        "slerp": {"merge_method": "slerp", "base_model": "base", "models": [{"model": "base"}, {"model": "m1"}],
                  "parameters": {"t": [{"filter": "self_attn", "value": [0, 0.5, 0.3, 1]}, {"value": 0.4}]}},
        "model_stock": {"merge_method": "model_stock", "base_model": "base",
                        "models": [{"model": "m0"}, {"model": "m1"}, {"model": "m2"}]},
        "breadcrumbs_ties": {"merge_method": "breadcrumbs_ties", "base_model": "base",
                             "models": [{"model": "m0", "parameters": {"weight": 1.0, "density": 0.6, "gamma": 0.02}},
                                        {"model": "m1", "parameters": {"weight": 0.5, "density": 0.8}}]},
    }
    for name, cfg in cfgs.items():
        path = write_cfg(f"{name}.yml", cfg)
        out = os.path.join(WORK, f"out_{name}")
        r = graft("merge", path, "--out", out)
        check(r.returncode == 0, f"merge {name}: exit 0 ({r.stderr.strip()[:300]})")
        if r.returncode == 0:
            compare(out, expected_merge(cfg, models), f"merge {name}")
        if name == "breadcrumbs_ties":
            check("zeroed" in r.stderr and "model.norm.weight" in r.stderr, "breadcrumbs: n_top == 0 quirk reported")
    check(os.path.exists(os.path.join(WORK, "out_ties", "mergekit_config.yml")), "mergekit_config.yml written")
    out = os.path.join(WORK, "out_ties_peft")
    r = graft("merge", os.path.join(WORK, "ties.yml"), "--out", out, "--peft-semantics")
    check(r.returncode == 0, "merge ties --peft-semantics: exit 0")
    if r.returncode == 0:
        compare(out, expected_peft_ties(cfgs["ties"], models), "merge ties --peft-semantics equals PEFT's merge_utils.ties")
    out = os.path.join(WORK, "out_ties_sharded")
    r = graft("merge", os.path.join(WORK, "ties.yml"), "--out", out, "--out-shard-size", "2K")
    shards = [f for f in os.listdir(out) if f.startswith("model-")] if r.returncode == 0 else []
    check(len(shards) > 2 and os.path.exists(os.path.join(out, "model.safetensors.index.json")),
          f"--out-shard-size 2K: {len(shards)} shards and an index")
    if r.returncode == 0:
        compare(out, expected_merge(cfgs["ties"], models), "sharded output equals the reference")
    check(open(os.path.join(WORK, "out_ties", "config.json")).read() == '{"model_type": "toy"}',
          "config.json copied from the base")
    cfg = dict(cfgs["linear"], tokenizer_source="m1")
    r = graft("merge", write_cfg("tok.yml", cfg), "--out", os.path.join(WORK, "out_tok"))
    check(r.returncode == 0 and os.path.exists(os.path.join(WORK, "out_tok", "tokenizer.json"))
          and os.path.exists(os.path.join(WORK, "out_tok", "config.json")),
          "tokenizer files from tokenizer_source, config.json from the first model")
    back = yaml.safe_load(open(os.path.join(WORK, "out_ties", "mergekit_config.yml")))
    check(back["merge_method"] == "ties" and back["models"][1]["parameters"]["weight"] == [0.2, 0.8],
          "mergekit_config.yml reads back in PyYAML")


def check_dare_and_dtype(models):
    cfg = {"merge_method": "dare_ties", "base_model": "base", "out_dtype": "bfloat16",
           "models": [{"model": "m0", "parameters": {"weight": 1.0, "density": 0.5}},
                      {"model": "m1", "parameters": {"weight": 1.0, "density": 0.5}}]}
    path = write_cfg("dare.yml", cfg)
    outs = []
    for k, seed in enumerate(["1", "1", "2"]):
        out = os.path.join(WORK, f"out_dare{k}")
        r = graft("merge", path, "--out", out, "--seed", seed)
        check(r.returncode == 0, f"dare_ties seed {seed}: exit 0")
        outs.append(open(os.path.join(out, "model.safetensors"), "rb").read() if r.returncode == 0 else b"")
    check(outs[0] == outs[1] and outs[0] != outs[2], "dare_ties: same seed same bytes, another seed other bytes")
    got, dtypes = st.load_model(os.path.join(WORK, "out_dare0"))
    check(dtypes["model.layers.0.mlp.up_proj.weight"] == "BF16" and dtypes["model.rotary.inv_freq_ids"] == "I64",
          "out_dtype bfloat16: float tensors BF16, integer tensors unchanged")


def check_shape_rules(models):
    odd = {k: v.copy() for k, v in models["m2"].items()}
    odd["model.layers.0.mlp.up_proj.weight"] = rng.standard_normal((15, 8)).astype(np.float32)
    odd["model.embed_tokens.weight"] = np.concatenate([odd["model.embed_tokens.weight"],
                                                      rng.standard_normal((2, 8)).astype(np.float32)])
    st.save_model(os.path.join(WORK, "odd"), odd)
    cfg = {"merge_method": "ties", "base_model": "base",
           "models": [{"model": "m0", "parameters": {"weight": 0.5, "density": 0.5}},
                      {"model": "odd", "parameters": {"weight": 0.5, "density": 0.5}}]}
    out = os.path.join(WORK, "out_odd")
    r = graft("merge", write_cfg("odd.yml", cfg), "--out", out)
    check(r.returncode == 0 and "skipping" in r.stderr and "model.layers.0.mlp.up_proj.weight" in r.stderr,
          "shape mismatch: model skipped for that tensor, with a warning naming it")
    check("model.embed_tokens.weight" in r.stderr and "submatrix" in r.stderr, "larger embedding: cut, with a warning")
    if r.returncode == 0:
        want = expected_merge(cfg, {"base": models["base"], "m0": models["m0"],
                                    "odd": dict(odd, **{"model.embed_tokens.weight": odd["model.embed_tokens.weight"][:12]})})
        compare(out, want, "merge with a skipped model and a cut embedding")


def expect_fail(args, needles, what):
    r = graft(*args, ok=False)
    msg = r.stderr
    check(r.returncode == 1 and all(n in msg for n in needles), f"{what}: exit 1 naming {needles} ({msg.strip()[:200]})")


def check_bad_inputs(models):
    miss = {k: v for k, v in models["m1"].items() if k != "model.layers.2.mlp.up_proj.weight"}
    st.save_model(os.path.join(WORK, "miss"), miss)
    half = {k: (v.astype(np.float16) if k == "model.layers.1.self_attn.q_proj.weight" else v) for k, v in models["m1"].items()}
    st.save_model(os.path.join(WORK, "half"), half)
    base_cfg = "merge_method: ties\nbase_model: base\nmodels:\n  - model: m0\n    parameters: {weight: 1, density: 0.5}\n"
    out = os.path.join(WORK, "out_bad")
    expect_fail(["merge", write_cfg("miss.yml", base_cfg + "  - model: miss\n    parameters: {weight: 1}\n"), "--out", out],
                ["model.layers.2.mlp.up_proj.weight", "miss"], "missing tensor")
    check(not os.path.exists(out) and no_tmp_left(WORK), "failed merge leaves no output and no temporary directory")
    expect_fail(["merge", write_cfg("half.yml", base_cfg + "  - model: half\n    parameters: {weight: 1}\n"), "--out", out],
                ["model.layers.1.self_attn.q_proj.weight", "F16"], "dtype mismatch")
    expect_fail(["merge", write_cfg("nofile.yml", base_cfg + "  - model: no_such_model\n"), "--out", out],
                ["no_such_model", "nofile.yml:6"], "config naming a missing model")
    expect_fail(["merge", write_cfg("nobase.yml", base_cfg.replace("base_model: base", "base_model: gone")), "--out", out],
                ["gone", "nobase.yml:2"], "config naming a missing base model")
    sl = ("merge_method: slerp\nbase_model: base\nparameters: {t: 0.5}\nslices:\n  - sources:\n"
          "      - {model: base, layer_range: [0, %d]}\n      - {model: m1, layer_range: [0, %d]}\n")
    r = graft("merge", write_cfg("slices.yml", sl % (N_LAYERS, N_LAYERS)), "--out", os.path.join(WORK, "out_slices"))
    check(r.returncode == 0, "whole-model slices: exit 0")
    if r.returncode == 0:
        eq = {"merge_method": "slerp", "base_model": "base", "parameters": {"t": 0.5},
              "models": [{"model": "base"}, {"model": "m1"}]}
        compare(os.path.join(WORK, "out_slices"), expected_merge(eq, models), "slices == the models form")
    expect_fail(["merge", write_cfg("slices3.yml", sl % (3, 3)), "--out", out], ["layer_range [0, 3]", "4 layers"],
                "slices not covering the model")
    expect_fail(["merge", write_cfg("meth.yml", base_cfg.replace("ties", "frankenmerge")), "--out", out],
                ["frankenmerge", "meth.yml:1"], "unknown method")
    expect_fail(["merge", write_cfg("param.yml", base_cfg + "parameters:\n  lamda: 0.5\n"), "--out", out],
                ["lamda", "param.yml:7"], "unknown parameter")
    expect_fail(["merge", write_cfg("noweight.yml", base_cfg + "  - model: m1\n"), "--out", out],
                ["weight", "m1"], "missing required weight")
    check(not os.path.exists(out) and no_tmp_left(WORK), "no output and no temporary directory after the failures")
    # an existing output survives a failing merge, is refused without --force and replaced with it
    os.makedirs(out)
    open(os.path.join(out, "keep.txt"), "w").write("precious")
    expect_fail(["merge", os.path.join(WORK, "miss.yml"), "--out", out, "--force"], ["model.layers.2"], "failing --force")
    check(open(os.path.join(out, "keep.txt")).read() == "precious" and no_tmp_left(WORK),
          "existing output untouched by a failing merge")
    expect_fail(["merge", os.path.join(WORK, "ties.yml"), "--out", out], ["exists"], "non-empty output without --force")
    r = graft("merge", os.path.join(WORK, "ties.yml"), "--out", out, "--force")
    check(r.returncode == 0 and not os.path.exists(os.path.join(out, "keep.txt")) and no_tmp_left(WORK),
          "--force replaces the output whole")


def check_taskvec_rebase(models):
    d = lambda n: os.path.join(WORK, n)  # noqa: E731
    r = graft("taskvec", "extract", d("m0"), d("base"), "--out", d("tv0"))
    check(r.returncode == 0, "taskvec extract: exit 0")
    graft("taskvec", "extract", d("m1"), d("base"), "--out", d("tv1"))
    tv0, dt = st.load_model(d("tv0"))
    exact = all(np.array_equal(tv0[k], (models["m0"][k].astype(np.float64) - models["base"][k]).astype(np.float32))
                for k in tv0)
    check(exact and "model.rotary.inv_freq_ids" not in tv0, "extract: tau = ft - base exactly, float tensors only")
    r = graft("taskvec", "apply", d("base"), d("tv0"), d("tv1"), "--scale", "0.4", "--out", d("applied"))
    check(r.returncode == 0, "taskvec apply: exit 0")
    tv1, _ = st.load_model(d("tv1"))
    want = {k: (v + np.float32(0.4) * (tv0[k] + tv1[k]) if k in tv0 else v) for k, v in models["base"].items()}
    compare(d("applied"), want, "taskvec apply base + 0.4 (tau0 + tau1)")
    r = graft("taskvec", "negate", d("tv0"), "--out", d("neg"))
    neg, _ = st.load_model(d("neg"))
    check(r.returncode == 0 and all(np.array_equal(neg[k], -tv0[k]) for k in tv0), "taskvec negate: -tau exactly")
    # rebase: C gets B - A; C's embedding is larger (kept and reported), B has an extra head
    C = model_tensors(0.05, models["base"])
    C["model.embed_tokens.weight"] = rng.standard_normal((14, 8)).astype(np.float32)
    st.save_model(d("newbase"), C)
    B = dict(models["m0"], **{"score.weight": rng.standard_normal((3, 8)).astype(np.float32)})
    st.save_model(d("tuned"), B)
    r = graft("rebase", "--old-base", d("base"), "--old-tuned", d("tuned"), "--new-base", d("newbase"), "--out", d("rebased"))
    check(r.returncode == 0 and "model.embed_tokens.weight" in r.stderr and "score.weight" in r.stderr,
          "rebase: exit 0, reports the shape mismatch and the tuned-only tensor")
    got, _ = st.load_model(d("rebased"))
    ok = all(np.array_equal(got[k], (C[k].astype(np.float64) + (B[k].astype(np.float64) - models["base"][k])).astype(np.float32))
             for k in C if C[k].dtype == np.float32 and k != "model.embed_tokens.weight")
    check(ok and np.array_equal(got["model.embed_tokens.weight"], C["model.embed_tokens.weight"]) and "score.weight" not in got,
          "rebase: C + (B - A) exactly (double, rounded once); mismatched tensor kept from C; tuned-only ignored")
    r = graft("rebase", "--old-base", d("base"), "--old-tuned", d("tuned"), "--new-base", d("newbase"), "--out",
              d("rebased2"), "--alpha", "0.5", "--tuned-only", "add", "--json")
    got, _ = st.load_model(d("rebased2"))
    k = "model.layers.3.mlp.up_proj.weight"
    check(r.returncode == 0 and '"only_other_added":1' in r.stdout and np.array_equal(got["score.weight"], B["score.weight"])
          and np.array_equal(got[k], (C[k] + 0.5 * (B[k].astype(np.float64) - models["base"][k])).astype(np.float32)),
          "rebase --alpha 0.5 --tuned-only add")
    expect_fail(["rebase", "--old-base", d("base"), "--old-tuned", d("tuned"), "--new-base", d("newbase"), "--out",
                 d("rebased3"), "--unmatched", "error"], ["model.embed_tokens.weight"], "rebase --unmatched error")
    expect_fail(["taskvec", "apply", d("base"), d("nonexistent_tv"), "--out", d("x")], ["nonexistent_tv"], "apply: missing TV")


def main():
    if os.path.exists(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)
    models = setup_models()
    check_methods(models)
    check_dare_and_dtype(models)
    check_shape_rules(models)
    check_bad_inputs(models)
    check_taskvec_rebase(models)
    print(f"{len(failures)} failed")
    shutil.rmtree(WORK, ignore_errors=True)
    sys.exit(1 if failures else 0)


main()
