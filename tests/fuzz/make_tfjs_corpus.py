"""Writes tests/fuzz/corpus/tfjs: seed inputs for fuzz_tfjs (u16 weight
length, weight bytes, model.json text) — small valid Keras models in TF.js
layers form (functional and Sequential; uint8, float16 and float32 weights)."""
import json
import os
import struct

import numpy as np

rng = np.random.default_rng(1)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "tfjs")
os.makedirs(out, exist_ok=True)


def lay(name, cls, inbound, **cfg):
    cfg["name"] = name
    return {"name": name, "class_name": cls, "config": cfg,
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else []}


def weights(spec):
    entries, blobs = [], []
    for name, shape, q in spec:
        a = rng.uniform(-1, 1, shape).astype(np.float32)
        e = {"name": name, "shape": list(shape), "dtype": "float32"}
        if q == "uint8":
            e["quantization"] = {"dtype": "uint8", "min": -1.0, "scale": 2 / 255}
            blobs.append(rng.integers(0, 256, a.size, dtype=np.uint8).tobytes())
        elif q == "float16":
            e["quantization"] = {"dtype": "float16"}
            blobs.append(a.astype("<f2").tobytes())
        else:
            blobs.append(a.tobytes())
        entries.append(e)
    return entries, b"".join(blobs)


def save(name, topo, spec):
    entries, blob = weights(spec)
    model = {"modelTopology": {"model_config": topo}, "weightsManifest": [{"paths": ["w.bin"], "weights": entries}]}
    with open(os.path.join(out, name), "wb") as f:
        f.write(struct.pack("<H", len(blob)) + blob + json.dumps(model, separators=(",", ":")).encode())


conv = dict(filters=2, kernel_size=[3, 3], strides=[1, 1], padding="same", data_format="channels_last",
            dilation_rate=[1, 1], activation="relu", use_bias=True)
save("functional_conv_dense", {"class_name": "Model", "config": {"layers": [
    lay("in", "InputLayer", [], batch_input_shape=[None, 4, 4, 2]),
    lay("c", "Conv2D", ["in"], **conv),
    lay("g", "GlobalAveragePooling2D", ["c"]),
    lay("d", "Dense", ["g"], units=2, activation="softmax", use_bias=True)],
    "input_layers": [["in", 0, 0]], "output_layers": [["d", 0, 0]]}},
    [("c/kernel", (3, 3, 2, 2), "uint8"), ("c/bias", (2,), None), ("d/kernel", (2, 2), "float16"), ("d/bias", (2,), None)])
save("sequential_dw_bn", {"class_name": "Sequential", "config": {"layers": [
    lay("in", "InputLayer", [], batch_input_shape=[None, 3, 3, 1]),
    lay("p", "ZeroPadding2D", [], padding=1),
    lay("dw", "DepthwiseConv2D", [], kernel_size=[3, 3], strides=[1, 1], padding="valid", depth_multiplier=1,
        use_bias=False, activation="linear"),
    lay("bn", "BatchNormalization", [], axis=-1, epsilon=1e-3, momentum=0.99),
    lay("r", "ReLU", [], max_value=6.0),
    lay("f", "Flatten", []),
    lay("o", "Dense", [], units=1, activation="linear", use_bias=False)]}},
    [("dw/depthwise_kernel", (3, 3, 1, 1), None), ("bn/gamma", (1,), None), ("bn/beta", (1,), None),
     ("bn/moving_mean", (1,), None), ("bn/moving_variance", (1,), "uint8"), ("o/kernel", (9, 1), None)])
save("add_pool", {"class_name": "Model", "config": {"layers": [
    lay("in", "InputLayer", [], batch_input_shape=[None, 4, 4, 1]),
    lay("a", "Activation", ["in"], activation="relu"),
    lay("s", "Add", ["in", "a"]),
    lay("m", "MaxPooling2D", ["s"], pool_size=[2, 2], strides=[2, 2], padding="valid"),
    lay("v", "AveragePooling2D", ["m"], pool_size=[2, 2], padding="valid"),
    lay("x", "Dropout", ["v"], rate=0.5)],
    "input_layers": [["in", 0, 0]], "output_layers": [["x", 0, 0]]}}, [])
