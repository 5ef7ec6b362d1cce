"""st_compare A B TOL [NAME:LO:HI ...] — exits 0 when two safetensors files
hold the same tensor names and shapes and every value agrees within
TOL*(1+|b|); prints the largest difference. Each NAME:LO:HI leaves the flat
elements [LO, HI) of tensor NAME out of the comparison (reported apart):
for values whose gradient is zero in exact arithmetic, which an optimizer
that divides by the gradient's RMS (Adam) moves by float noise. For the
data-parallel tests."""
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get("GRAFT_SRC", "."), "tests", "util"))
import numpy as np  # noqa: E402
import st_numpy  # noqa: E402

a, b, tol = st_numpy.load(sys.argv[1])[0], st_numpy.load(sys.argv[2])[0], float(sys.argv[3])
skip = {}
for spec in sys.argv[4:]:
    name, lo, hi = spec.rsplit(":", 2)
    skip.setdefault(name, []).append((int(lo), int(hi)))
if sorted(a) != sorted(b):
    sys.exit("tensor names differ: %s vs %s" % (sorted(a), sorted(b)))
if any(k not in a for k in skip):
    sys.exit("no tensor %s to leave out" % [k for k in skip if k not in a])
worst, worst_skipped, bad = 0.0, 0.0, []
for k in a:
    x, y = np.asarray(a[k], np.float64), np.asarray(b[k], np.float64)
    if x.shape != y.shape:
        sys.exit("%s: shape %s vs %s" % (k, x.shape, y.shape))
    d = np.abs(x - y).ravel()
    keep = np.ones(d.shape, bool)
    for lo, hi in skip.get(k, []):
        keep[lo:hi] = False
    if (~keep).any():
        worst_skipped = max(worst_skipped, float(d[~keep].max()))
    d = d[keep]
    worst = max(worst, float(d.max()) if d.size else 0.0)
    if np.any(d > tol * (1 + np.abs(y.ravel()[keep]))) or not np.all(np.isfinite(x)):
        bad.append(k)
print("max abs difference %.3g over %d tensors" % (worst, len(a)) +
      (" (%.3g in the elements left out)" % worst_skipped if skip else ""))
sys.exit("beyond %g: %s" % (tol, ", ".join(bad)) if bad else 0)
