#!/usr/bin/env bash
# graft inspect / graft convert: every crafted malformed file in the corpus
# exits 1 with "graft: error: <file>: ..." and no crash; valid files, sharded
# models and PEFT adapter dirs are listed (text and --json); convert casts
# float tensors exactly as numpy rounds (f16) and renames by pattern.
set -u
G="$1"
SRC="${GRAFT_SRC:?}"
PY="${GRAFT_PYTHON:-/usr/bin/python3}"
T="${GRAFT_TMP:-/tmp}/cli_inspect.$$"
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

n_bad=0
for f in "$SRC"/tests/fuzz/corpus/safetensors/m_*.safetensors; do
  "$G" inspect "$f" >"$T/out" 2>"$T/err"; rc=$?
  [ "$rc" = 1 ] || bad "inspect $(basename "$f"): exit $rc, want 1"
  grep -q "^graft: error: $f: " "$T/err" || bad "inspect $(basename "$f"): stderr '$(cat "$T/err")'"
  "$G" inspect --json "$f" >/dev/null 2>&1; rc=$?
  [ "$rc" = 1 ] || bad "inspect --json $(basename "$f"): exit $rc"
  n_bad=$((n_bad + 1))
done
[ "$n_bad" -ge 30 ] || bad "only $n_bad malformed files"
for f in "$SRC"/tests/fuzz/corpus/safetensors/v_*.safetensors; do
  "$G" inspect "$f" >"$T/out" 2>"$T/err" || bad "inspect $(basename "$f") failed: $(cat "$T/err")"
  "$G" inspect --json "$f" >"$T/j.json" || bad "inspect --json $(basename "$f") failed"
  "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['kind']=='safetensors'" "$T/j.json" || bad "json of $(basename "$f")"
done
"$G" inspect "$T/does-not-exist" 2>"$T/err"; [ $? = 1 ] || bad "missing file exit code"

# files made by the independent Python writer: a float model, a sharded one, an adapter
"$PY" - "$SRC" "$T" <<'PYEOF' || bad "python setup"
import json, os, struct, sys
sys.path.insert(0, os.path.join(sys.argv[1], "tests", "ref"))
import numpy as np
import safetensors_writer as stw
t = sys.argv[2]
rng = np.random.default_rng(3)
w = (rng.standard_normal((4, 5)) * 3).astype("<f4")
b = rng.standard_normal(5).astype("<f4")
ids = np.arange(6, dtype="<i8")
stw.save_file({"model.layer.weight": ("F32", [4, 5], w.tobytes()), "model.layer.bias": ("F32", [5], b.tobytes()),
               "ids": ("I64", [6], ids.tobytes())}, os.path.join(t, "m.safetensors"), {"format": "pt"})
np.save(os.path.join(t, "w.npy"), w); np.save(os.path.join(t, "b.npy"), b)
os.makedirs(os.path.join(t, "sharded"))
stw.save_file({"a": ("F32", [2], b[:2].tobytes())}, os.path.join(t, "sharded", "model-00001-of-00002.safetensors"), {"format": "pt"})
stw.save_file({"b": ("F32", [3], b[:3].tobytes())}, os.path.join(t, "sharded", "model-00002-of-00002.safetensors"), {"format": "pt"})
json.dump({"metadata": {"total_size": 20}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}},
          open(os.path.join(t, "sharded", "model.safetensors.index.json"), "w"))
os.makedirs(os.path.join(t, "adapter"))
p = "base_model.model.model.layers.0.self_attn.q_proj."
stw.save_file({p + "lora_A.weight": ("F32", [4, 5], np.zeros((4, 5), "<f4").tobytes()),
               p + "lora_B.weight": ("F32", [5, 4], np.zeros((5, 4), "<f4").tobytes())},
              os.path.join(t, "adapter", "adapter_model.safetensors"), {"format": "pt"})
json.dump({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "bias": "none",
           "task_type": "CAUSAL_LM", "my_new_field": 1}, open(os.path.join(t, "adapter", "adapter_config.json"), "w"))
PYEOF

"$G" inspect "$T/sharded" >"$T/out" || bad "inspect sharded dir"
grep -q "sharded model" "$T/out" && grep -q "total: 2 tensors, 5 parameters, 20 bytes" "$T/out" || bad "sharded listing: $(cat "$T/out")"
"$G" inspect "$T/adapter" >"$T/out" || bad "inspect adapter"
grep -q "peft_type LORA" "$T/out" && grep -q "unknown config key (kept, not used): my_new_field" "$T/out" || bad "adapter listing: $(cat "$T/out")"
"$G" inspect --json "$T/adapter" >"$T/a.json" || bad "inspect --json adapter"
"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['kind']=='peft_adapter' and d['adapter_config']['r']==4 and d['unknown_config_keys']==['my_new_field']" "$T/a.json" || bad "adapter json"

# convert: f16 cast as numpy rounds, integers untouched, renames, sharded input
"$G" convert "$T/m.safetensors" "$T/h.safetensors" --dtype f16 --rename model.=,weight=W >/dev/null || bad "convert f16"
"$G" convert "$T/sharded" "$T/one.safetensors" >/dev/null || bad "convert sharded -> one file"
"$G" convert "$T/m.safetensors" "$T/x.safetensors" --dtype f8 2>/dev/null; [ $? = 2 ] || bad "bad --dtype is a usage error"
"$G" convert "$T/m.safetensors" "$T/x.safetensors" --rename bias=weight 2>/dev/null; [ $? = 1 ] || bad "colliding rename must fail"
"$PY" - "$T" <<'PYEOF' || bad "converted values"
import json, struct, sys, os
import numpy as np
t = sys.argv[1]
def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        b, e = v["data_offsets"]
        dt = {"F16": "<f2", "F32": "<f4", "I64": "<i8"}[v["dtype"]]
        out[k] = (v["dtype"], np.frombuffer(raw[8 + n + b:8 + n + e], dt).reshape(v["shape"]))
    return out, h.get("__metadata__")
h, meta = load(os.path.join(t, "h.safetensors"))
assert sorted(h) == ["ids", "layer.W", "layer.bias"], sorted(h)
assert h["layer.W"][0] == "F16" and h["ids"][0] == "I64" and meta == {"format": "pt"}
w = np.load(os.path.join(t, "w.npy"))
assert (h["layer.W"][1] == w.astype(np.float16)).all()
assert (h["ids"][1] == np.arange(6)).all()
one, _ = load(os.path.join(t, "one.safetensors"))
assert sorted(one) == ["a", "b"]
PYEOF
[ -z "$(ls "$T" | grep '\.tmp\.')" ] || bad "temporary files left: $(ls "$T")"
[ $fail = 0 ] && echo "cli_inspect: ok ($n_bad malformed files)"
exit $fail
