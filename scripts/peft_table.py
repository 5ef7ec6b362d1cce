# peft_table.py — the PEFT study tables of docs/RESULTS.md from a study's results.jsonl.
#   python3 scripts/peft_table.py DIR/results.jsonl [MORE.jsonl ...] [--ref METHOD]
#     per (method, budget) mean ± sd accuracy over seeds, gap to METHOD (default
#     finetune; a method spec such as finetune:lr=0.02 works), trainable
#     parameters, source accuracy (forgetting), peak RSS, seconds per run.
#   python3 scripts/peft_table.py --select A.jsonl [B.jsonl ...]
#     the setting-selection table: per setting (method spec) and budget, the
#     mean accuracy over seeds (on the held-out split when the study had
#     "holdout") and the mean source accuracy; diverged runs counted as such.
#   python3 scripts/peft_table.py --rule A.jsonl [B.jsonl ...]
#     the selection rule of docs/RESULTS.md: per setting the mean, min and
#     source accuracy over all its runs (seeds x budgets); per method (the
#     name before the first ':') the setting with the highest mean among
#     those where no run diverged and every run is above 50 %.
#   python3 scripts/peft_table.py --per-seed A.jsonl [B.jsonl ...]
#     per (method, budget) each seed's test accuracy / source accuracy.
#   Any FILE.jsonl may be written FILE.jsonl@TAG: ":TAG" is appended to every
#     method of that file (runs of one spec under different study keys, e.g.
#     the training length: results.jsonl@steps_x=3).
#   python3 scripts/peft_table.py --paired A B X.jsonl [Y.jsonl ...]
#     method B against method A run with the same options ("A:opts" and
#     "B:opts"), per budget over the seeds both ran: mean target and source
#     accuracy of each, the paired source-accuracy difference B - A (mean ±
#     sd) and on how many seeds B's source accuracy is higher.
import json, sys, statistics as st

def load(paths):
    runs = []
    for p in paths:
        p, _, tag = p.partition("@")
        rs = [json.loads(l) for l in open(p) if l.strip()]
        for r in rs:
            if tag and "method" in r: r["method"] += ":" + tag
        runs += rs
    return runs

def pct(x):
    return float("nan") if x is None else 100 * x

def transfer_runs(paths):
    """The transfer runs of the files and their method specs in first-seen order."""
    t = [r for r in load(paths) if r["phase"] == "transfer"]
    return t, list(dict.fromkeys(r["method"] for r in t))

def select_table(paths):
    t, settings = transfer_runs(paths)
    budgets = sorted({r["budget"] for r in t})
    settings.sort(key=lambda m: (m.split(":")[0], m))
    print("| setting | " + " | ".join("%g%%: acc %% | %g%%: source acc %%" % (100 * b, 100 * b) for b in budgets) + " | seeds |")
    print("|---|" + "---|---|" * len(budgets) + "---|")
    for m in settings:
        cols, n = [], 0
        for b in budgets:
            rs = [r for r in t if r["budget"] == b and r["method"] == m]
            n = max(n, len(rs))
            bad = sum(1 for r in rs if r["extra"].get("diverged"))
            if not rs: cols += ["-", "-"]
            elif bad: cols += ["diverged (%d of %d)" % (bad, len(rs)), "-"]
            else:
                cols += ["%.2f" % st.mean(pct(r["accuracy"]) for r in rs),
                         "%.2f" % st.mean(pct(r["extra"].get("source_accuracy")) for r in rs)]
        print("| %s | %s | %d |" % (m, " | ".join(cols), n))

def rule_table(paths):
    t, settings = transfer_runs(paths)
    settings.sort(key=lambda m: (m.split(":")[0], m))
    best = {}
    print("| setting | held-out acc % (mean) | min | all > 50 % | source acc % (mean) | trainable | runs |")
    print("|---|---|---|---|---|---|---|")
    for m in settings:
        rs = [r for r in t if r["method"] == m]
        bad = sum(1 for r in rs if r["extra"].get("diverged") or r["accuracy"] is None)
        acc = [pct(r["accuracy"]) for r in rs if r["accuracy"] is not None]
        ok = bad == 0 and min(acc) > 50
        mean = st.mean(acc) if acc else float("nan")
        src = [pct(r["extra"].get("source_accuracy")) for r in rs if r["accuracy"] is not None]
        print("| %s | %s | %s | %s | %s | %d | %d |" % (
            m, "%.2f" % mean if acc else "-", "%.2f" % min(acc) if acc else "-",
            "yes" if ok else "no (%d diverged)" % bad if bad else "no", "%.2f" % st.mean(src) if src else "-",
            rs[0]["trainable_params"], len(rs)))
        fam = m.split(":")[0]
        if ok and (fam not in best or mean > best[fam][1]): best[fam] = (m, mean)
    for fam, (m, mean) in best.items():
        print("chosen %s: %s (%.2f)" % (fam, m, mean))

def paired_table(a, b, paths):
    t = [r for r in load(paths) if r["phase"] == "transfer" and r["accuracy"] is not None]
    idx = {(r["method"], r["budget"], r["seed"]): r for r in t}
    opts = []
    for r in t:
        if r["method"].startswith(a + ":") and r["method"][len(a):] not in opts: opts.append(r["method"][len(a):])
    print("| options | labels | seeds | %s acc %% | %s acc %% | %s source %% | %s source %% | source %s - %s (mean ± sd) | seeds %s higher |"
          % (a, b, a, b, b, a, b))
    print("|---|---|---|---|---|---|---|---|---|")
    for o in opts:
        for bud in sorted({r["budget"] for r in t}):
            seeds = sorted(s for (m, bb, s) in idx if m == a + o and bb == bud and (b + o, bud, s) in idx)
            if not seeds: continue
            ra = [idx[(a + o, bud, s)] for s in seeds]
            rb = [idx[(b + o, bud, s)] for s in seeds]
            sa = [pct(r["extra"]["source_accuracy"]) for r in ra]
            sb = [pct(r["extra"]["source_accuracy"]) for r in rb]
            d = [y - x for x, y in zip(sa, sb)]
            print("| %s | %g%% | %d | %.2f | %.2f | %.2f | %.2f | %+.2f ± %.2f | %d of %d |" % (
                o[1:], 100 * bud, len(seeds), st.mean(pct(r["accuracy"]) for r in ra),
                st.mean(pct(r["accuracy"]) for r in rb), st.mean(sa), st.mean(sb), st.mean(d),
                st.stdev(d) if len(d) > 1 else 0, sum(1 for x in d if x > 0), len(d)))

def per_seed_table(paths):
    t, methods = transfer_runs(paths)
    seeds = sorted({r["seed"] for r in t})
    print("| method | labels | " + " | ".join("seed %d" % s for s in seeds) + " |")
    print("|---|---|" + "---|" * len(seeds))
    for b in sorted({r["budget"] for r in t}):
        for m in methods:
            idx = {r["seed"]: r for r in t if r["method"] == m and r["budget"] == b}
            if not idx: continue
            cols = ["%.2f / %.2f" % (pct(idx[s]["accuracy"]), pct(idx[s]["extra"].get("source_accuracy")))
                    if s in idx and idx[s]["accuracy"] is not None else "-" for s in seeds]
            print("| %s | %g%% | %s |" % (m, 100 * b, " | ".join(cols)))

def study_table(paths, ref):
    runs = load(paths)
    pre = [r for r in runs if r["phase"] == "pretrain"]
    t = [r for r in runs if r["phase"] == "transfer"]
    src = {r["seed"]: r["accuracy"] for r in pre}
    n_seeds = len({r["seed"] for r in t})
    if src: print("source models (pretrain, test acc on classes 0-4): " + ", ".join("seed %d %.2f%%" % (s, 100 * a) for s, a in sorted(src.items())))
    methods = list(dict.fromkeys(r["method"] for r in t))
    budgets = sorted({r["budget"] for r in t})
    def cell(m, b):
        return [r for r in t if r["method"] == m and r["budget"] == b]
    ft = {b: st.mean([pct(r["accuracy"]) for r in cell(ref, b)]) if cell(ref, b) else float("nan") for b in budgets}
    ftp = [r for r in t if r["method"] == ref][0]["trainable_params"]
    print("| method | labels | acc %% (mean ± sd, %d seeds) | Δ vs %s | trainable | %% of %s | source acc %% (forgetting) | peak RSS MiB | s/run |"
          % (n_seeds, ref, ref))
    print("|---|---|---|---|---|---|---|---|---|")
    for b in budgets:
        for m in methods:
            rs = cell(m, b)
            if not rs: continue
            a = [pct(r["accuracy"]) for r in rs]
            sa = [pct(r["extra"].get("source_accuracy")) for r in rs]
            sd = st.stdev(a) if len(a) > 1 else 0
            print("| %s | %g%% | %.2f ± %.2f | %+.2f | %d | %.1f%% | %.2f | %.0f | %.1f |" % (
                m, 100 * b, st.mean(a), sd, st.mean(a) - ft[b], rs[0]["trainable_params"],
                100.0 * rs[0]["trainable_params"] / ftp, st.mean(sa), max(r["peak_rss_bytes"] for r in rs) / 2**20,
                st.mean(r["seconds"] for r in rs)))

if len(sys.argv) > 1 and sys.argv[1] == "--select":
    select_table(sys.argv[2:])
elif len(sys.argv) > 3 and sys.argv[1] == "--paired":
    paired_table(sys.argv[2], sys.argv[3], sys.argv[4:])
elif len(sys.argv) > 1 and sys.argv[1] == "--per-seed":
    per_seed_table(sys.argv[2:])
elif len(sys.argv) > 1 and sys.argv[1] == "--rule":
    rule_table(sys.argv[2:])
else:
    args = sys.argv[1:]
    ref = "finetune"
    if "--ref" in args:
        i = args.index("--ref")
        ref = args[i + 1]
        del args[i:i + 2]
    study_table(args, ref)
