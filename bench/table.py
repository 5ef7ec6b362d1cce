"""table — the latest `make bench` run in bench/results.jsonl as Markdown
tables (for docs/RESULTS.md). Usage: /usr/bin/python3 bench/table.py [FILE] [--time STAMP]"""
import json
import os
import sys

TARGETS = {"mlp": 1.3, "lenet": 2.0, "resnet": 1.2, "gpt": 1.3}


def load(path, stamp=None):
    recs = [json.loads(line) for line in open(path) if line.strip()]
    if not recs:
        sys.exit("table: %s is empty" % path)
    stamp = stamp or max(r["time"] for r in recs)
    return [r for r in recs if r["time"] == stamp], stamp


def pressure(r):
    (k, v), = r["pressure"].items()
    return "%s %.0f" % (k, v)


def gemm_table(recs):
    rows = ["| n | threads | graft GF/s | direct sgemm GF/s | torch GF/s | graft/sgemm | % of peak | graft/torch | CPU pressure |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted((r for r in recs if r["bench"] == "gemm"), key=lambda r: (r["threads"], r["n"])):
        rows.append("| %d | %d | %.1f | %.1f | %.1f | %.1f%% | %.0f%% | %.2fx | %s |" % (
            r["n"], r["threads"], r["graft_gflops"], r["sgemm_gflops"], r["peer_gflops"],
            100 * r["graft_over_sgemm"], 100 * r["graft_gflops"] / r["sgemm_peak_gflops"],
            r["graft_over_peer"], pressure(r)))
    return rows


def model_table(recs):
    rows = ["| benchmark | case | threads | graft | torch | graft/torch (wall) | paired blocks (middle half) | target | graft/torch (CPU time) | same result | peak RSS graft/torch | CPU pressure |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    model = (r for r in recs if r["bench"] != "gemm" and "graft_over_peer" in r)
    for r in sorted(model, key=lambda r: (r["bench"], r["threads"], r["case"])):
        train = r["case"] == "train"
        unit = "tok/s" if r["bench"] == "gpt" else "img/s"
        rate = (lambda v: "%.0f %s" % (v, unit)) if train else None
        pb = r.get("paired_blocks")
        g = rate(r["graft_rate"]) if train else "%.3f ms" % (1e3 * r["graft_s"])
        p = rate(r["peer_rate"]) if train else "%.3f ms" % (1e3 * r["peer_s"])
        tgt = TARGETS.get(r["bench"]) if train else None
        ok = all(c[3] for c in r["checks"]) if r["checks"] else None
        if ok is False and r.get("checks_float64") and all(c[3] for c in r["checks_float64"]):
            ok = "float64"  # graft matches the float64 peer; the float32 peer drifted
        threads = str(r["threads"])
        if r.get("peer_setup", "default") != "default":
            threads += " (torch: %s)" % r["peer_setup"]
        rows.append("| %s | %s | %s | %s | %s | %.2fx | %s | %s | %s | %s | %.0f/%.0f MB | %s |" % (
            r["bench"], r["case"], threads, g, p, r["graft_over_peer"],
            "%d (%.2f-%.2fx)" % (pb["pairs"], pb["q1"], pb["q3"]) if pb else "",
            (">= %.1fx %s" % (tgt, "met" if r["graft_over_peer"] >= tgt else "MISSED")) if tgt else "",
            "%.2fx" % r["graft_over_peer_cpu_time"] if r.get("graft_over_peer_cpu_time") else "",
            {True: "yes", False: "NO", None: "", "float64": "yes (= float64 peer)"}[ok], r["graft_rss_kb"] / 1024, r["peer_rss_kb"] / 1024,
            pressure(r)))
    return rows


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    stamp = sys.argv[sys.argv.index("--time") + 1] if "--time" in sys.argv else None
    if stamp in args:
        args.remove(stamp)
    path = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.jsonl")
    recs, stamp = load(path, stamp)
    m = recs[-1]["machine"]
    print("Run of %s (graft %s, quick=%s): %s, %d cores, kernel %s; graft: %s; torch: %s\n" % (
        stamp, m["git"], recs[0]["quick"], m["cpu"], m["cores"], m["kernel"], m.get("graft_blas"),
        m.get("peer_blas")))
    print("\n".join(gemm_table(recs)))
    print()
    print("\n".join(model_table(recs)))
    for r in recs:
        if r["bench"] == "host":
            print("\nhost %s: %s" % (r["case"], "; ".join("cpu%d best %.1f GF/s, slow %.0f%%" % (
                c["cpu"], c["best_gflops"], 100 * c["slow_share"]) for c in r["cpus"])))


if __name__ == "__main__":
    main()
