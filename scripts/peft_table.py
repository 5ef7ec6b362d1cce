# peft_table.py — the PEFT study table of docs/RESULTS.md from a study's results.jsonl:
# per (method, budget) mean ± sd accuracy over seeds, gap to finetune, trainable
# parameters, source accuracy (forgetting), peak RSS, seconds per run.
# Usage: python3 scripts/peft_table.py DIR/results.jsonl
import json, sys, statistics as st
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pre = [r for r in runs if r["phase"] == "pretrain"]
t = [r for r in runs if r["phase"] == "transfer"]
src = {r["seed"]: r["accuracy"] for r in pre}
print("source models (pretrain, test acc on classes 0-4): " + ", ".join("seed %d %.2f%%" % (s, 100 * a) for s, a in sorted(src.items())))
methods = []
for r in t:
    if r["method"] not in methods: methods.append(r["method"])
budgets = sorted({r["budget"] for r in t})
def cell(m, b):
    return [r for r in t if r["method"] == m and r["budget"] == b]
ft = {b: st.mean([r["accuracy"] for r in cell("finetune", b)]) for b in budgets}
ftp = cell("finetune", budgets[0])[0]["trainable_params"]
print("| method | labels | acc % (mean ± sd, 3 seeds) | Δ vs finetune | trainable | % of finetune | source acc % (forgetting) | peak RSS MiB | s/run |")
print("|---|---|---|---|---|---|---|---|---|")
for b in budgets:
    for m in methods:
        rs = cell(m, b)
        if not rs: continue
        a = [100 * r["accuracy"] for r in rs]
        sa = [100 * r["extra"].get("source_accuracy", float("nan")) for r in rs]
        sd = st.stdev(a) if len(a) > 1 else 0
        print("| %s | %g%% | %.2f ± %.2f | %+.2f | %d | %.1f%% | %.2f | %.0f | %.1f |" % (
            m, 100 * b, st.mean(a), sd, st.mean(a) - 100 * ft[b], rs[0]["trainable_params"],
            100.0 * rs[0]["trainable_params"] / ftp, st.mean(sa), max(r["peak_rss_bytes"] for r in rs) / 2**20,
            st.mean(r["seconds"] for r in rs)))
