"""Reference files for tests/test_safetensors.c, made at test time:

 * <ref>/st_py/<case>.safetensors written by safetensors_writer.py (the
   reference writer's rules) and <ref>/st_py/manifest.json describing each
   case's tensors (name, dtype, shape, hex data) and metadata, so the C test
   loads the Python file and writes the same tensors to compare bytes;
 * <ref>/st_half.ref: random and special f32 values with their f16 bits
   (numpy astype, round to nearest even) and bf16 bits (torch), as f32.
"""
import json
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reflib  # noqa: E402
import safetensors_writer as stw  # noqa: E402


def rand_bytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def case_tensors(rng, specs):
    out = {}
    for name, dtype, shape in specs:
        n = stw.nbytes(dtype, shape)
        data = rand_bytes(rng, n)
        if dtype == "BOOL":
            data = bytes(b & 1 for b in data)
        out[name] = (dtype, shape, data)
    return out


def main():
    d = os.path.join(reflib.out_dir(), "st_py")
    os.makedirs(d, exist_ok=True)
    rng = random.Random(1234)
    all_dtypes = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64",
                  "U64", "F8_E4M3", "F8_E5M2"]
    cases = {
        "empty": ({}, None),
        "empty_meta": ({}, {"framework": "pt"}),
        "attn0": ({"attn0": ("F32", [1, 1, 2, 3],
                             np.arange(6, dtype="<f4").tobytes())}, None),
        "mixed": (case_tensors(rng, [("b", "BOOL", [3]), ("i8", "I8", [5]), ("h", "F16", [3]),
                                     ("bf", "BF16", [2, 3]), ("f", "F32", [7]),
                                     ("d", "F64", [1]), ("l", "I64", [2]), ("a_f32", "F32", [2]),
                                     ("z_f32", "F32", [1])]), {"format": "pt"}),
        "all_dtypes": (case_tensors(rng, [("t_" + dt.lower(), dt, [2, 3]) for dt in all_dtypes]),
                       {"format": "pt"}),
        "shapes": (case_tensors(rng, [("scalar", "F32", []), ("zero", "F32", [0]),
                                      ("zero2", "I32", [2, 0, 3]), ("vec", "F16", [5]),
                                      ("big", "F32", [4, 3, 2, 1, 2])]), None),
        "names": (case_tensors(rng, [("model.layers.0.self_attn.q_proj.weight", "F32", [2, 2]),
                                     ("caf\u00e9.\u4e2d\u6587", "F32", [1]),
                                     ("quote\"back\\slash", "F32", [1]),
                                     ("ctl\n\t\x01\x7f", "F32", [1]),
                                     ("Zupper", "F32", [1]), ("lower", "F32", [1])]),
                  {"format": "pt", "note": "multi\nline \"quoted\" \u00e9", "a_first": "1"}),
    }
    manifest = {}
    for name, (tensors, meta) in cases.items():
        stw.save_file(tensors, os.path.join(d, name + ".safetensors"), meta)
        manifest[name] = {
            "metadata": meta,
            "tensors": [{"name": k, "dtype": v[0], "shape": v[1], "hex": v[2].hex()}
                        for k, v in tensors.items()],
        }
    with open(os.path.join(d, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False)

    # f16 / bf16 rounding references
    nrng = np.random.default_rng(7)
    x = np.concatenate([
        nrng.standard_normal(4000).astype(np.float32) * np.float32(10.0) ** nrng.integers(-9, 6, 4000),
        np.array([0.0, -0.0, 65504.0, 65519.99, 65520.0, 1e6, -1e6, 5.96e-8, 2.98e-8, 2.99e-8, 6.1e-5,
                  6.09e-5, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, np.inf, -np.inf, 3.4e38, 1e-40,
                  1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8], dtype=np.float32),
        # halfway points between consecutive halves, both parities
        ((np.arange(1, 2000, dtype=np.float32) + np.float32(0.5)) * np.float32(2.0 ** -24)),
    ]).astype(np.float32)
    import torch
    f16 = x.astype(np.float16).view(np.uint16).astype(np.float32)
    bf16 = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().astype(np.uint16)
    reflib.write_ref("st_half", {"x": x, "f16bits": f16, "bf16bits": bf16.astype(np.float32)})


if __name__ == "__main__":
    main()
