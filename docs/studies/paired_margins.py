"""Mean ± sd over seeds of each method's test accuracy, and of the paired
(same-seed) differences between methods, from graft study results.jsonl
files. Usage: python3 docs/studies/paired_margins.py RESULTS.jsonl [...]"""
import json
import statistics as st
import sys

acc = {}
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        acc.setdefault(r["method"], {})[int(r["seed"])] = 100 * r["accuracy"]
for m, v in acc.items():
    a = [v[k] for k in sorted(v)]
    sd = st.stdev(a) if len(a) > 1 else 0.0
    print(f"{m:14s} seeds {sorted(v)}: {st.mean(a):.2f} ± {sd:.2f}  ({', '.join(f'{x:.1f}' for x in a)})")
names = list(acc)
for i, a in enumerate(names):
    for b in names[i + 1:]:
        ks = sorted(set(acc[a]) & set(acc[b]))
        if len(ks) > 1:
            d = [acc[b][k] - acc[a][k] for k in ks]
            print(f"{b} - {a} (seeds {ks}): {st.mean(d):+.2f} ± {st.stdev(d):.2f} (min {min(d):+.1f}, max {max(d):+.1f})")
