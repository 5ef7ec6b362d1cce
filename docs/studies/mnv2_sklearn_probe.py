"""scikit-learn's LogisticRegression on the very features a graft backbone
study exported ("export_features": DIR; DIR/<method>-seed<k>-{train,test}.csv,
features then the label): the same standardization (train mean/sd, sd < 1e-6
-> 1) and C as graft's probe, solved exactly (L-BFGS to convergence), to see
whether graft's SGD probe loses accuracy to its optimizer. Prints one line
per (method, seed) with the graft accuracy from DIR/../results.jsonl when
given. Usage: /usr/bin/python3 docs/studies/mnv2_sklearn_probe.py DIR
[RESULTS.jsonl] [C ...]"""
import glob
import json
import os
import re
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression


def load(path):
    a = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return a[:, :-1], a[:, -1].astype(int)


def main():
    d = sys.argv[1]
    graft = {}
    if len(sys.argv) > 2 and sys.argv[2].endswith(".jsonl"):
        for line in open(sys.argv[2]):
            r = json.loads(line)
            graft[(r["method"], int(r["seed"]))] = r["accuracy"]
    cs = [float(c) for c in sys.argv[3:]] or [1.0]
    for tr in sorted(glob.glob(os.path.join(d, "*-train.csv"))):
        m = re.match(r"(.*)-seed(\d+)-train\.csv", os.path.basename(tr))
        method, seed = m.group(1), int(m.group(2))
        xtr, ytr = load(tr)
        xte, yte = load(tr.replace("-train.csv", "-test.csv"))
        mu, sd = xtr.mean(0), xtr.std(0)
        sd[sd < 1e-6] = 1.0
        xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
        accs = []
        for c in cs:
            lr = LogisticRegression(C=c, max_iter=20000, tol=1e-8).fit(xtr, ytr)
            accs.append(f"C={c:g}: {100 * lr.score(xte, yte):.2f}")
        g = graft.get((method, seed))
        print(f"{method:12s} seed {seed}  sklearn {', '.join(accs)}  graft {'%.2f' % (100 * g) if g is not None else '-'}")


main()
