"""st_numpy — a minimal safetensors reader/writer on numpy for graft's test
scripts (no `safetensors` package here). Writes what the reference writer
writes: dtype-descending then name order, header padded with spaces to 8,
__metadata__ {"format": "pt"}; bf16 is handled as raw uint16 (round to
nearest even from f32). Sharded models: save_sharded() writes
model-0000i-of-0000K.safetensors plus model.safetensors.index.json."""
import json
import os
import struct

import numpy as np

ORDER = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]
NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32, "I16": np.int16,
      "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_, "BF16": np.uint16, "U16": np.uint16, "U32": np.uint32,
      "U64": np.uint64}


def f32_to_bf16(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_to_f32(u):
    return (np.asarray(u, dtype=np.uint32) << 16).view(np.float32)


def dtype_of(a):
    for k, v in NP.items():
        if k not in ("BF16", "U16") and a.dtype == v:
            return k
    raise ValueError(f"unsupported dtype {a.dtype}")


def save(path, tensors, metadata=None):
    """tensors: name -> ndarray, or name -> ("BF16", f32 array) for bf16."""
    items = []
    for name, a in tensors.items():
        if isinstance(a, tuple):
            dt, arr = a
            raw = f32_to_bf16(arr) if dt == "BF16" else np.ascontiguousarray(arr, NP[dt])
            shape = list(np.shape(arr))
        else:
            dt, raw, shape = dtype_of(a), np.ascontiguousarray(a), list(a.shape)
        items.append((name, dt, shape, raw.astype(raw.dtype.newbyteorder("<")).tobytes()))
    items.sort(key=lambda it: (-ORDER.index(it[1]), it[0]))
    header, off = {}, 0
    header["__metadata__"] = metadata if metadata is not None else {"format": "pt"}
    for name, dt, shape, b in items:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(b)]}
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for it in items:
            f.write(it[3])
    os.replace(tmp, path)


def load(path, as_f32=True):
    """name -> array (bf16/f16 converted to f32 when as_f32), and dtypes."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out, dtypes = {}, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = np.frombuffer(data[8 + n + b:8 + n + e], dtype=np.dtype(NP[info["dtype"]]).newbyteorder("<"))
        a = raw.reshape(info["shape"])
        if as_f32 and info["dtype"] == "BF16":
            a = bf16_to_f32(a).reshape(info["shape"])
        elif as_f32 and info["dtype"] in ("F16", "F64"):
            a = a.astype(np.float32)
        out[name] = a
        dtypes[name] = info["dtype"]
    return out, dtypes


def load_model(d, as_f32=True):
    """A model directory: model.safetensors or the sharded index."""
    single = os.path.join(d, "model.safetensors")
    if os.path.exists(single):
        return load(single, as_f32)
    index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    out, dtypes = {}, {}
    for shard in sorted(set(index["weight_map"].values())):
        t, dt = load(os.path.join(d, shard), as_f32)
        out.update(t)
        dtypes.update(dt)
    return out, dtypes


def save_model(d, tensors, shards=1):
    os.makedirs(d, exist_ok=True)
    if shards == 1:
        save(os.path.join(d, "model.safetensors"), tensors)
        return
    names = sorted(tensors)
    weight_map, total = {}, 0
    for k in range(shards):
        part = {nm: tensors[nm] for nm in names[k::shards]}
        fn = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        save(os.path.join(d, fn), part)
        for nm, a in part.items():
            weight_map[nm] = fn
            total += (np.asarray(a[1]).size * 2) if isinstance(a, tuple) else a.nbytes
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
