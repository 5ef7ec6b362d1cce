"""Reference for tests/test_tfjs.c: the MobileNetV2 of nsfwjs (fetched by
scripts/fetch_models.sh into build/models/mobilenet_v2) re-implemented in
PyTorch by hand (torch_models.KerasMobileNetV2) from the same dequantized
weights: out_relu features (globally averaged) of two 96x96 images, and the
full classifier output of one 224x224 image. Writes nothing when the model
is absent (the C test then skips)."""
import os

import numpy as np
import torch

from reflib import write_ref
from torch_models import KerasMobileNetV2, tfjs_weights

src = os.environ.get("GRAFT_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
d = os.path.join(os.environ.get("GRAFT_MODELS", os.path.join(src, "build", "models")), "mobilenet_v2")
if os.path.exists(os.path.join(d, "weights.bin")):
    torch.set_num_threads(1)
    _, W = tfjs_weights(d)
    net = KerasMobileNetV2(W)
    rng = np.random.default_rng(5)
    x96 = torch.tensor(rng.uniform(0, 1, (2, 3, 96, 96)).astype(np.float32))
    x224 = torch.tensor(rng.uniform(0, 1, (1, 3, 224, 224)).astype(np.float32))
    with torch.no_grad():
        feat = net(x96).mean(dim=(2, 3))
        probs = net.head(net(x224))
    write_ref("tfjs_mobilenet", {"x96": x96, "feat96": feat, "x224": x224, "probs224": probs})

# A tiny Keras model in TF.js layers form (uint8-quantized, float16 and
# float32 weights), its files and its output computed in NHWC by torch.
rng = np.random.default_rng(9)


def lay(name, cls, inbound, **cfg):
    cfg["name"] = name
    return {"name": name, "class_name": cls, "config": cfg,
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else []}


layers = [
    lay("inp", "InputLayer", [], batch_input_shape=[None, 5, 6, 2], dtype="float32"),
    lay("pad", "ZeroPadding2D", ["inp"], padding=[[0, 1], [0, 1]], data_format="channels_last"),
    lay("conv", "Conv2D", ["pad"], filters=3, kernel_size=[3, 3], strides=[2, 2], padding="valid",
        data_format="channels_last", dilation_rate=[1, 1], activation="relu", use_bias=True),
    lay("dw", "DepthwiseConv2D", ["conv"], kernel_size=[3, 3], strides=[1, 1], padding="same",
        data_format="channels_last", dilation_rate=[1, 1], activation="linear", use_bias=False, depth_multiplier=2),
    lay("bn", "BatchNormalization", ["dw"], axis=-1, momentum=0.99, epsilon=0.001, center=True, scale=True),
    lay("relu", "ReLU", ["bn"], max_value=6.0, negative_slope=0.0, threshold=0.0),
    lay("res", "Conv2D", ["relu"], filters=6, kernel_size=[1, 1], strides=[1, 1], padding="valid",
        data_format="channels_last", dilation_rate=[1, 1], activation="linear", use_bias=False),
    lay("add", "Add", ["relu", "res"]),
    lay("flat", "Flatten", ["add"], data_format="channels_last"),
    lay("fc", "Dense", ["flat"], units=4, activation="softmax", use_bias=True),
]
W = [("conv/kernel", rng.uniform(-1, 1, (3, 3, 2, 3)), "uint8"), ("conv/bias", rng.uniform(-.2, .2, 3), None),
     ("dw/depthwise_kernel", rng.uniform(-1, 1, (3, 3, 3, 2)), None), ("bn/gamma", rng.uniform(.5, 1.5, 6), "float16"),
     ("bn/beta", rng.uniform(-.5, .5, 6), None), ("bn/moving_mean", rng.uniform(-.5, .5, 6), None),
     ("bn/moving_variance", rng.uniform(.5, 2, 6), "uint8"), ("res/kernel", rng.uniform(-1, 1, (1, 1, 6, 6)), None),
     ("fc/kernel", rng.uniform(-1, 1, (36, 4)), "uint8"), ("fc/bias", rng.uniform(-.2, .2, 4), None)]
entries, blobs, vals = [], [], {}
for name, a, q in W:
    a = a.astype(np.float32)
    e = {"name": name, "shape": list(a.shape), "dtype": "float32"}
    if q == "uint8":
        lo, hi = float(a.min()), float(a.max())
        scale = (hi - lo) / 255
        qa = np.round((a - lo) / scale).astype(np.uint8)
        e["quantization"] = {"dtype": "uint8", "min": lo, "scale": scale}
        blobs.append(qa.tobytes())
        a = np.float32(lo) + np.float32(scale) * qa.astype(np.float32)
    elif q == "float16":
        e["quantization"] = {"dtype": "float16"}
        blobs.append(a.astype("<f2").tobytes())
        a = a.astype(np.float16).astype(np.float32)
    else:
        blobs.append(a.astype("<f4").tobytes())
    entries.append(e)
    vals[name] = torch.tensor(a)
model = {"format": "layers-model", "modelTopology": {"keras_version": "2.2.4", "backend": "tensorflow", "model_config": {
    "class_name": "Model", "config": {"name": "tiny", "layers": layers, "input_layers": [["inp", 0, 0]],
                                      "output_layers": [["fc", 0, 0]]}}},
    "weightsManifest": [{"paths": ["tiny.bin"], "weights": entries}]}
import json  # noqa: E402
from reflib import out_dir  # noqa: E402
with open(os.path.join(out_dir(), "tiny.json"), "w") as f:
    json.dump(model, f)
with open(os.path.join(out_dir(), "tiny.bin"), "wb") as f:
    f.write(b"".join(blobs))

F = torch.nn.functional
x = torch.tensor(rng.uniform(0, 1, (2, 2, 5, 6)).astype(np.float32))  # NCHW, as graft is fed
h = F.pad(x, (0, 1, 0, 1))
h = F.relu(F.conv2d(h, vals["conv/kernel"].permute(3, 2, 0, 1), vals["conv/bias"], 2))
k = vals["dw/depthwise_kernel"]  # [3,3,3,2] -> out channel c*2+m
h = F.conv2d(h, k.permute(2, 3, 0, 1).reshape(6, 1, 3, 3), None, 1, 1, groups=3)
h = F.batch_norm(h, vals["bn/moving_mean"], vals["bn/moving_variance"], vals["bn/gamma"], vals["bn/beta"], False, 0.0, 1e-3)
h = F.relu6(h)
h = h + F.conv2d(h, vals["res/kernel"].permute(3, 2, 0, 1))
h = h.permute(0, 2, 3, 1).flatten(1)  # Keras flattens NHWC
y = torch.softmax(h @ vals["fc/kernel"] + vals["fc/bias"], 1)
write_ref("tfjs_tiny", {"x": x, "y": y})
