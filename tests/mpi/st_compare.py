"""st_compare A B TOL — exits 0 when two safetensors files hold the same
tensor names and shapes and every value agrees within TOL*(1+|b|); prints
the largest difference. For the data-parallel tests."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get("GRAFT_SRC", "."), "tests", "util"))
import numpy as np  # noqa: E402
import st_numpy  # noqa: E402

a, b, tol = st_numpy.load(sys.argv[1])[0], st_numpy.load(sys.argv[2])[0], float(sys.argv[3])
if sorted(a) != sorted(b):
    sys.exit("tensor names differ: %s vs %s" % (sorted(a), sorted(b)))
worst, bad = 0.0, []
for k in a:
    x, y = np.asarray(a[k], np.float64), np.asarray(b[k], np.float64)
    if x.shape != y.shape:
        sys.exit("%s: shape %s vs %s" % (k, x.shape, y.shape))
    d = np.abs(x - y)
    worst = max(worst, float(d.max()) if d.size else 0.0)
    if np.any(d > tol * (1 + np.abs(y))) or not np.all(np.isfinite(x)):
        bad.append(k)
print("max abs difference %.3g over %d tensors" % (worst, len(a)))
sys.exit("beyond %g: %s" % (tol, ", ".join(bad)) if bad else 0)
