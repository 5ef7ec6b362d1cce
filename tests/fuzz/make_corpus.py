"""make_corpus.py — regenerates the safetensors seed corpus and the crafted
malformed files in tests/fuzz/corpus/safetensors/, plus expected.tsv
(file -> graft error kind, gr_st_err_name()). Valid seeds are v_*, crafted
malformed files m_*; files the fuzzer finds are added by hand as f_* and are
only required not to crash. Run: python3 tests/fuzz/make_corpus.py
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
import safetensors_writer as stw  # noqa: E402

OUT = os.path.join(HERE, "corpus", "safetensors")


def raw(header, data=b"", n=None):
    h = header.encode("utf-8") if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if n is None else n) + h + data


def t(name, dtype, shape, off):
    return '"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (name, dtype, json.dumps(shape), off[0], off[1])


def three():
    return stw.serialize({"a": ("F32", [2, 2], bytes(range(16))), "b": ("F16", [3], bytes(range(6))),
                          "c": ("I8", [2], b"\x01\xff")}, {"format": "pt"})


def main():
    os.makedirs(OUT, exist_ok=True)
    valid = {
        "v_empty": stw.serialize({}),
        "v_empty_meta": stw.serialize({}, {"framework": "pt"}),
        "v_attn0": stw.serialize({"attn0": ("F32", [1, 1, 2, 3], struct.pack("<6f", 0, 1, 2, 3, 4, 5))}),
        "v_three": three(),
        "v_mixed": stw.serialize({"b": ("BOOL", [2], b"\x00\x01"), "h": ("BF16", [1], b"\x80\x3f"),
                                  "d": ("F64", [], struct.pack("<d", 2.5)), "z": ("U8", [0, 3], b"")}),
        "v_scalar": raw("{" + t("test", "I32", [], (0, 4)) + "}", b"\x07\0\0\0"),
        "v_zero": raw("{" + t("test", "I32", [2, 0], (0, 0)) + "}"),
        "v_ws": raw("\t\n{}\r "),
        "v_unicode": stw.serialize({"caf\u00e9": ("U8", [1], b"\x05")}, {"n\u00f6te": "\u4e2d"}),
    }
    d16 = b"\0" * 16
    a = t("a", "U8", [4], (0, 4))
    bad = {
        "m_empty": (b"", "HeaderTooSmall"),
        "m_7bytes": (b"\x01\0\0\0\0\0\0", "HeaderTooSmall"),
        "m_header_cap": (raw("{}", n=100_000_001), "HeaderTooLarge"),
        "m_n_2p56": (raw("{}", n=1 << 56), "HeaderTooLarge"),
        "m_n_u64max": (raw("{}", n=(1 << 64) - 1), "HeaderTooLarge"),
        "m_lying_len": (raw("{" + a + "}", b"\0" * 4, n=500), "InvalidHeaderLength"),
        "m_trunc_header": (three()[:40], "InvalidHeaderLength"),
        "m_trunc_data": (three()[:-3], "MetadataIncompleteBuffer"),
        "m_trailing_bytes": (three() + b"extra_bogus_data_for_polyglot_file", "MetadataIncompleteBuffer"),
        "m_offsets_out_of_range": (raw("{" + t("a", "U8", [16], (0, 16)) + "}", b"\0" * 8), "MetadataIncompleteBuffer"),
        "m_non_utf8": (raw(b"\xff"), "InvalidUtf8"),
        "m_overlong_utf8": (raw(b'{"\xc0\xaf":1}'), "InvalidUtf8"),
        "m_bad_json_open": (raw("{"), "BadJson"),
        "m_bad_json_trailing_comma": (raw('{"__metadata__":{},}'), "BadJson"),
        "m_bad_json_single_quote": (raw("{'a':1}"), "BadJson"),
        "m_nul_padding": (raw(b"{}\0\0\0\0\0\0"), "BadJson"),
        "m_lone_surrogate": (raw('{"\\udc00":{}}'), "BadJson"),
        "m_control_char": (raw('{"a\x01":{}}'), "BadJson"),
        "m_deep_nesting": (raw('{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":' + "[" * 200 + "]" * 200 + "}}"), "BadJson"),
        "m_array_top": (raw("[]"), "NotObject"),
        "m_number_top": (raw("42"), "NotObject"),
        "m_entry_not_object": (raw('{"a":[1,2]}'), "NotObject"),
        "m_unknown_dtype": (raw("{" + t("a", "F33", [4], (0, 4)) + "}", b"\0" * 4), "UnknownDtype"),
        "m_dtype_not_string": (raw('{"a":{"dtype":7,"shape":[4],"data_offsets":[0,4]}}', b"\0" * 4), "BadTensorInfo"),
        "m_missing_offsets": (raw('{"a":{"dtype":"U8","shape":[4]}}', b"\0" * 4), "BadTensorInfo"),
        "m_negative_dim": (raw('{"a":{"dtype":"U8","shape":[-4],"data_offsets":[0,4]}}', b"\0" * 4), "BadShape"),
        "m_float_dim": (raw('{"a":{"dtype":"U8","shape":[4.0],"data_offsets":[0,4]}}', b"\0" * 4), "BadShape"),
        "m_dim_over_u64": (raw('{"a":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,4]}}', b"\0" * 4), "BadShape"),
        "m_shape_not_array": (raw('{"a":{"dtype":"U8","shape":4,"data_offsets":[0,4]}}', b"\0" * 4), "BadShape"),
        "m_offsets_three": (raw('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4,4]}}', b"\0" * 4), "BadOffsets"),
        "m_offsets_negative": (raw('{"a":{"dtype":"U8","shape":[4],"data_offsets":[-1,3]}}', b"\0" * 4), "BadOffsets"),
        "m_overlap": (raw("{" + a + "," + t("b", "U8", [4], (2, 6)) + "}", b"\0" * 6), "InvalidOffset"),
        "m_hole": (raw("{" + a + "," + t("b", "U8", [4], (6, 10)) + "}", b"\0" * 10), "InvalidOffset"),
        "m_end_before_begin": (raw("{" + a + "," + t("b", "U8", [0], (4, 2)) + "}", b"\0" * 4), "InvalidOffset"),
        "m_json_attack": (raw("{" + ",".join(t("weight_%d" % i, "F32", [2, 2], (0, 16)) for i in range(10)) + "}", d16), "InvalidOffset"),
        "m_shape_overflow": (raw("{" + t("a", "I32", [2, 18446744073709551614], (0, 16)) + "}", d16), "ValidationOverflow"),
        "m_bits_overflow": (raw("{" + t("a", "I32", [2, 9223372036854775807], (0, 16)) + "}", d16), "ValidationOverflow"),
        "m_size_mismatch": (raw("{" + t("a", "I32", [2, 2], (0, 4)) + "}", b"\0" * 4), "TensorInvalidInfo"),
        "m_f4_odd": (raw("{" + t("a", "F4", [3], (0, 2)) + "}", b"\0" * 2), "MisalignedSlice"),
        "m_dup_tensor": (raw("{" + a + "," + t("a", "U8", [4], (4, 8)) + "}", b"\0" * 8), "DuplicateKey"),
        "m_dup_zero_sized": (raw("{" + a + "," + t("a", "U8", [0], (4, 4)) + "}", b"\0" * 4), "DuplicateKey"),
        "m_dup_meta_key": (raw('{"__metadata__":{"format":"pt","format":"np"}}'), "DuplicateKey"),
        "m_dup_metadata": (raw('{"__metadata__":{},"__metadata__":{}}'), "DuplicateKey"),
        "m_meta_number": (raw('{"__metadata__":{"step":12}}'), "BadMetadata"),
        "m_meta_nested": (raw('{"__metadata__":{"cfg":{"lr":1}}}'), "BadMetadata"),
        "m_meta_array": (raw('{"__metadata__":["pt"]}'), "BadMetadata"),
        "m_tensor_named_metadata": (raw("{" + t("__metadata__", "U8", [4], (0, 4)) + "}", b"\0" * 4), "BadMetadata"),
        "m_nul_in_name": (raw('{"a\\u0000b":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'), "BadName"),
    }
    for old in os.listdir(OUT):
        if old.startswith(("v_", "m_")):
            os.remove(os.path.join(OUT, old))
    for name, data in valid.items():
        with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
            f.write(data)
    with open(os.path.join(OUT, "..", "expected.tsv"), "w") as f:
        f.write("# file\tkind (gr_st_err_name); OK = must load\n")
        for name in valid:
            f.write("%s.safetensors\tOK\n" % name)
        for name, (data, kind) in bad.items():
            with open(os.path.join(OUT, name + ".safetensors"), "wb") as g:
                g.write(data)
            f.write("%s.safetensors\t%s\n" % (name, kind))
    print("%d valid, %d malformed" % (len(valid), len(bad)))


if __name__ == "__main__":
    main()
