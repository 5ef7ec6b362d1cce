"""Reference for test_data_shift: numpy's rot90 / fliplr / flipud / transpose
and 1 - x on a batch of 2-channel images (square 4x4 and non-square 3x5)."""
import numpy as np

from reflib import write_ref

rng = np.random.default_rng(7)
ops = {
    "invert": lambda a: 1 - a,
    "rot90": lambda a: np.rot90(a, 1, axes=(2, 3)),
    "rot180": lambda a: np.rot90(a, 2, axes=(2, 3)),
    "rot270": lambda a: np.rot90(a, 3, axes=(2, 3)),
    "hflip": lambda a: a[:, :, :, ::-1],
    "vflip": lambda a: a[:, :, ::-1, :],
    "transpose": lambda a: np.swapaxes(a, 2, 3),
}
for h, w in ((4, 4), (3, 5)):
    x = rng.uniform(0, 1, size=(3, 2, h, w)).astype(np.float32)
    arrays = {"x": x}
    for name, f in ops.items():
        if h == w or name not in ("rot90", "rot270", "transpose"):
            arrays[name] = f(x)
    write_ref(f"shift_{h}x{w}", arrays)
