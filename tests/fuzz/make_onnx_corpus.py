#!/usr/bin/env python3
"""make_onnx_corpus.py — writes tests/fuzz/corpus/onnx: a few valid models from
the ONNX suite (ok_*) and hand-made malformed ones (bad_*), as raw protobuf
bytes (stdlib only). test_onnx replays them; fuzz_onnx starts from them."""
import os, shutil, sys

SUITE = "/usr/share/libonnx-testdata/data/node"
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "onnx")
os.makedirs(out, exist_ok=True)

def varint(v):
    b = bytearray()
    v &= (1 << 64) - 1
    while True:
        x = v & 0x7F
        v >>= 7
        if v:
            b.append(x | 0x80)
        else:
            b.append(x)
            return bytes(b)

def field(num, wire, payload):
    tag = varint((num << 3) | wire)
    if wire == 2:
        return tag + varint(len(payload)) + payload
    return tag + payload

def s(num, text):
    return field(num, 2, text.encode())

def tensor(dims, dtype, raw, name="w"):
    return b"".join(field(1, 0, varint(d)) for d in dims) + field(2, 0, varint(dtype)) + s(8, name) + field(9, 2, raw)

def model(graph):
    return field(1, 0, varint(8)) + field(8, 2, field(2, 0, varint(13))) + field(7, 2, graph)

relu = field(1, 2, s(1, "x") + s(2, "y") + s(3, "r") + s(4, "Relu"))
io = field(11, 2, s(1, "x")) + field(12, 2, s(1, "y"))
cases = {
    "bad_huge_graph_len": field(1, 0, varint(8)) + b"\x3a\xff\xff\xff\xff\x0f\x0a",
    "bad_overlong_varint": b"\x08" + b"\xff" * 10 + b"\x01",
    "bad_group_wire": b"\x0b\x0c",
    "bad_no_graph": field(1, 0, varint(7)),
    "bad_dims_lie": model(field(5, 2, tensor([1 << 40, 1 << 20], 1, b"\0\0\0\0")) + relu + io),
    "bad_raw_short": model(field(5, 2, tensor([4], 1, b"\0" * 15)) + relu + io),
    "bad_negative_dim": model(field(5, 2, tensor([(1 << 64) - 3], 1, b"")) + relu + io),
    "bad_nul_in_name": model(field(1, 2, s(1, "x") + s(2, "y\0z") + s(4, "Relu")) + io),
    "bad_no_op_type": model(field(1, 2, s(1, "x") + s(2, "y")) + io),
    "bad_packed_float_len": model(field(5, 2, field(1, 0, varint(2)) + field(2, 0, varint(1)) + field(4, 2, b"\0" * 7)) + relu + io),
    "bad_external_data": model(field(5, 2, field(1, 0, varint(1)) + field(2, 0, varint(1)) + field(14, 0, varint(1))) + relu + io),
    "bad_attr_no_name": model(field(1, 2, s(1, "x") + s(2, "y") + s(4, "Relu") + field(5, 2, field(3, 0, varint(1)))) + io),
    "bad_too_many_dims": model(field(5, 2, tensor([1] * 9, 1, b"\0\0\0\0")) + relu + io),
    "ok_relu": model(relu + io),
    "ok_unknown_op": model(field(1, 2, s(1, "x") + s(2, "y") + s(3, "n1") + s(4, "FancyOp")) + io),
    "ok_undefined_input": model(field(1, 2, s(1, "nope") + s(2, "y") + s(4, "Relu")) + io),
}
for name, data in cases.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
for case in ("test_conv_with_strides_padding", "test_gemm_all_attributes", "test_reshape_negative_dim",
             "test_maxpool_2d_pads", "test_softmax_axis_1"):
    p = os.path.join(SUITE, case, "model.onnx")
    if os.path.exists(p):
        shutil.copy(p, os.path.join(out, "ok_" + case[5:]))
print("wrote", len(os.listdir(out)), "files to", out)
