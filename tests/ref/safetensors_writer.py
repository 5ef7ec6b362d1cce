"""safetensors_writer — an independent safetensors writer in plain Python
(struct + json), following the reference crate's prepare()/serialize():

  * tensors sorted by dtype descending in the crate's Dtype enum order, then
    by name (byte-wise, as Rust's String ordering);
  * contiguous data_offsets from 0 in that order;
  * header = compact JSON (no spaces), "__metadata__" first when given (keys
    sorted here: the crate's HashMap order is arbitrary for 2+ keys), then the
    tensors in offset order, each {"dtype","shape","data_offsets"};
  * non-ASCII written raw (serde_json does not escape it);
  * padded with spaces to a multiple of 8; 8-byte little-endian length first.

The `safetensors` Python package is not installable here; graft's tests use
this writer to produce files graft must load, and compare graft's output with
it byte for byte.
"""
import json
import struct

DTYPE_ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
               "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32",
               "C64", "F64", "I64", "U64"]
DTYPE_BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8,
              "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16,
              "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64,
              "I64": 64, "U64": 64}


def nbytes(dtype, shape):
    n = 1
    for d in shape:
        n *= d
    bits = n * DTYPE_BITS[dtype]
    assert bits % 8 == 0
    return bits // 8


def serialize(tensors, metadata=None):
    """tensors: dict name -> (dtype, shape, data bytes). Returns the file bytes."""
    if "__metadata__" in tensors:
        raise ValueError("'__metadata__' is a reserved name")
    order = sorted(tensors.items(),
                   key=lambda kv: (-DTYPE_ORDER.index(kv[1][0]), kv[0].encode("utf-8")))
    header = {}
    if metadata is not None:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata, key=lambda s: s.encode())}
    offset = 0
    blobs = []
    for name, (dtype, shape, data) in order:
        n = nbytes(dtype, shape)
        assert len(data) == n, (name, len(data), n)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    if len(text) > 100_000_000:
        raise ValueError("HeaderTooLarge")
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def save_file(tensors, path, metadata=None):
    with open(path, "wb") as f:
        f.write(serialize(tensors, metadata))
