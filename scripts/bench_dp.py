#!/usr/bin/env python3
"""scripts/bench_dp.py — data-parallel scaling of graft's training loops:
2 ranks x 1 thread (`mpirun -np 2 build/bench_dp_mpi`) against 1 rank x 1
thread (`build/bench_dp`) at the same global batch, for LeNet on
Fashion-MNIST (gr_train) and the char-GPT on KJV (gr_lm_train); see
bench/bench_dp.c for the models and what is timed.

Each repetition runs, one after the other: 1x1 at the global batch, 2x1 at
the global batch, 1x1 at half the batch (each rank's own work: the ratio
t(batch) / t(batch/2) is the speedup two ranks would reach with free,
perfectly synchronized communication). The step time of a run is the
median over its timed steps (per-step medians are less disturbed by other
processes than totals); the summary gives medians over repetitions and the
speedup as the median of the per-repetition ratios, also from the 10th
percentile step times (the fast steps: what a quiet machine would give).
Every run prints the load average and /proc/pressure/cpu before it. Last,
the allreduce of one step's packed buffer runs alone (2000 calls for
LeNet, 200 for the GPT): its minimum is the transfer cost without waits.

Usage (repository root, after a build with MPI in build/):
  python3 scripts/bench_dp.py [--build build] [--reps 5] [--configs lenet:64,gpt:8]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

STEPS = {"lenet": (300, 20), "gpt": (40, 5)}  # timed + warm-up steps, warm-up steps


def load_line():
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    try:
        with open("/proc/pressure/cpu") as f:
            psi = f.readline().split()[1]
    except OSError:
        psi = "n/a"
    return "load %s, cpu pressure some %s" % (load, psi)


def run(cmd, env):
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode:
        sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr[-2000:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def measure(args, model, batch, env):
    steps, warmup = STEPS[model]
    one = [os.path.join(args.build, "bench_dp")]
    two = args.mpirun.split() + ["-np", str(args.np), os.path.join(args.build, "bench_dp_mpi")]
    kinds = [("1x1", one, batch), ("%dx1" % args.np, two, batch), ("1x1 half", one, batch // args.np)]
    res = {k: [] for k, _, _ in kinds}
    for rep in range(args.reps):
        for kind, exe, b in kinds:
            load = load_line()
            r = run(exe + [model, str(b), str(steps + warmup), str(warmup)], env)
            res[kind].append(r)
            print("  %s:%d rep %d %-8s median %8.3f ms  p10 %8.3f ms  comm %.3f ms/step  %.0f B/step  (%s)" % (
                model, batch, rep + 1, kind, r["step_ms_median"], r["step_ms_p10"], r["comm_ms_per_step"],
                r["bytes_per_step"], load), flush=True)
    floats = int(round(res["%dx1" % args.np][0]["bytes_per_step"] / 4))
    r = run(two + ["allreduce", str(floats), str(2000 if model == "lenet" else 200)], env)
    print("  %s:%d allreduce of %d floats alone: min %.3f ms, median %.3f ms (%s)" % (
        model, batch, floats, r["ms_min"], r["ms_median"], load_line()), flush=True)
    res["allreduce"] = r
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--configs", default="lenet:64,gpt:8", help="model:global_batch,...")
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--mpirun", default="mpirun --oversubscribe --allow-run-as-root")
    args = ap.parse_args()
    env = dict(os.environ, GRAFT_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    rows = []
    for cfg in args.configs.split(","):
        model, batch = cfg.split(":")
        if model not in STEPS or int(batch) % args.np:
            sys.exit("config %s: model lenet|gpt, batch divisible by %d" % (cfg, args.np))
        rows.append((model, int(batch), measure(args, model, int(batch), env)))
    n = "%dx1" % args.np
    print("\n%d repetitions; %s at the end" % (args.reps, load_line()))
    print("| model | global batch | 1x1 step | %s step | speedup (median; per rep) | speedup from p10 steps | "
          "bound t(b)/t(b/%d) | %s throughput | bytes/step | ms/step in collectives | allreduce alone min / median |" % (n, args.np, n))
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    med = statistics.median
    for model, batch, res in rows:
        one, two, half = res["1x1"], res[n], res["1x1 half"]
        ratio = [a["step_ms_median"] / b["step_ms_median"] for a, b in zip(one, two)]
        ratio10 = [a["step_ms_p10"] / b["step_ms_p10"] for a, b in zip(one, two)]
        bound = [a["step_ms_median"] / b["step_ms_median"] for a, b in zip(one, half)]
        t2 = med([r["step_ms_median"] for r in two])
        unit = "samples" if model == "lenet" else "tokens"
        ar = res["allreduce"]
        print("| %s | %d | %.2f ms | %.2f ms | %.2fx (%s) | %.2fx | %.2fx | %.0f %s/s | %.0f | %.3f | %.3f / %.3f ms |" % (
            model, batch, med([r["step_ms_median"] for r in one]), t2, med(ratio), " ".join("%.2f" % x for x in ratio),
            med(ratio10), med(bound), two[0]["units_per_step"] / t2 * 1e3, unit,
            med([r["bytes_per_step"] for r in two]), med([r["comm_ms_per_step"] for r in two]), ar["ms_min"], ar["ms_median"]))


if __name__ == "__main__":
    main()
