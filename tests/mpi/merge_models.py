"""merge_models DIR — writes a small base model (2 shards), three fine-tuned
variants, an int64 tensor that is copied, and dare_ties / ties configs into
DIR, for the sharded-merge test (cli_merge_sharded.sh)."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get("GRAFT_SRC", "."), "tests", "util"))
import numpy as np  # noqa: E402
import st_numpy as st  # noqa: E402

work = sys.argv[1]
rng = np.random.default_rng(7)
shapes = {"embed.weight": (40, 16), "norm.weight": (16,), "head.weight": (40, 16)}
for i in range(5):
    shapes[f"layers.{i}.q.weight"] = (16, 16)
    shapes[f"layers.{i}.up.weight"] = (32, 16)
    shapes[f"layers.{i}.ln.weight"] = (16,)
base = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
base["rotary.ids"] = np.arange(10, dtype=np.int64)
st.save_model(os.path.join(work, "base"), base, shards=2)
open(os.path.join(work, "base", "config.json"), "w").write('{"model_type": "toy"}')
for m in range(3):
    t = {k: (v + 0.1 * rng.standard_normal(v.shape).astype(np.float32)) if v.dtype == np.float32 else v
         for k, v in base.items()}
    st.save_model(os.path.join(work, f"m{m}"), t)
models = "".join(f"  - model: m{m}\n    parameters:\n      weight: {0.3 + 0.2 * m}\n      density: [0.9, 0.4]\n"
                 for m in range(3))
for method, extra in (("dare_ties", "out_dtype: bfloat16\n"), ("ties", "")):
    with open(os.path.join(work, f"{method}.yml"), "w") as f:
        f.write(f"merge_method: {method}\nbase_model: base\n{extra}models:\n{models}")
