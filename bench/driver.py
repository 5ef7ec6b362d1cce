"""driver — runs graft's benchmarks against their PyTorch peers, side by side.

Called by bench/run.sh (`make bench`, `make bench-quick`) under /usr/bin/python3.
For each benchmark and thread count it alternates runs of the graft program
(BUILD/bench_<name>) and the peer (bench/peer_<name>.py) with the same flags
and the same OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, takes medians over the
runs (at one thread the model benchmarks are paced: both programs run side
by side pinned to one CPU and take turns, one timed section or training
block at a time, and the training ratio is the median over the paired
blocks; this host slows each CPU by up to 2x for a second or two at a time,
so two separate runs may meet different machines), checks that both sides computed the same thing (a mismatch fails the
run: a fast wrong result must not pass; where graft and the float32 peer
disagree, the peer is run once more in float64 and graft passes only if it
agrees with that exact computation within the same tolerances), prints one line per case with the
ratio graft/peer and the CPU pressure during the runs, and appends one record
per case to bench/results.jsonl with the machine's facts.

Every program prints one JSON object per case on stdout with at least
{"bench","case","time_s"}; optional fields: "items" (images per timed unit,
for throughput), "flops" (per timed unit), "sgemm_s" (gemm: the direct call),
and the fields named in a benchmark's `checks` (compared across sides).
Paced (--blocks K), a program also prints {"await": SECTION} before each
timed section and waits for a line on stdin, and one "train_block" record
per block (bench_util.h bench_await_go, peerlib.await_go).
"""
import argparse
import datetime
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEER_PYTHON = "/usr/bin/python3"  # the Python that has torch 1.13


class Bench:
    """One benchmark: its programs, the flags both sides get, what must agree."""

    def __init__(self, name, quick, args=(), quick_args=(), init=False, checks=None,
                 targets=None, unit="img/s", exe=None, blocks=(10, 5)):
        self.name, self.quick, self.init, self.unit = name, quick, init, unit
        self.blocks = blocks  # paced runs: (full, quick) training blocks; None: separate runs
        self.exe = exe or name  # programs bench_<exe> and peer_<exe>.py
        self.args, self.quick_args = list(args), list(quick_args)
        self.checks = checks or {}    # field -> relative tolerance (graft vs peer)
        self.targets = targets or {}  # case -> minimum speed ratio graft/peer

    def flags(self, threads, quick, init_path, paced=False):
        f = ["--threads", str(threads)] + (self.quick_args if quick else self.args)
        if quick:
            f.append("--quick")
        if init_path:
            f += ["--init", init_path]
        if paced:
            f += ["--blocks", str(self.blocks[1 if quick else 0])]
        return f


# Relative tolerances, graft vs peer, after the same SGD steps from the same
# init. Sums in another order differ in the last bits; the two runs agree to
# 7 digits for ~40 MLP steps, then a ReLU unit whose input is within rounding
# of 0 switches on one side only and the runs drift apart slowly (seen: 3e-6
# on the loss, 6e-4 on the update norm after 65 steps, 3e-4 after 205). The
# loss moves little in a short run, so the checks that catch a wrong
# computation are update_norm (how far the parameters moved: a 2% step-size
# error shows as 1.3%, seen) and loss_drop (loss0 - loss_final).
TRAIN_CHECKS = {"loss0": 1e-4, "loss_final": 1e-3, "update_norm": 2e-3, "loss_drop": 1e-2,
                "out_checksum": 1e-3}
BENCHES = [
    Bench("gemm", quick=True, unit="GF/s", targets={}, blocks=None),
    Bench("mlp", quick=True, init=True, args=["--steps", "200", "--batch", "64"],
          quick_args=["--steps", "60", "--batch", "64"], checks=TRAIN_CHECKS,
          targets={"train": 1.3}),
    Bench("lenet", quick=True, init=True, args=["--steps", "60", "--batch", "64"],
          quick_args=["--steps", "20", "--batch", "64"], checks=TRAIN_CHECKS,
          targets={"train": 2.0}),
    Bench("resnet", quick=False, init=True, args=["--steps", "20", "--batch", "32"],
          checks=TRAIN_CHECKS, targets={"train": 1.2}),
    # fine-tuning step of an MLP 784-1024-1024-10: every parameter, then LoRA r=8
    Bench("ft", quick=False, init=True, exe="finetune", args=["--lora", "0", "--steps", "30", "--batch", "64"],
          quick_args=["--lora", "0", "--steps", "10", "--batch", "64"], checks=TRAIN_CHECKS),
    Bench("lora", quick=False, init=True, exe="finetune", args=["--lora", "8", "--steps", "30", "--batch", "64"],
          quick_args=["--lora", "8", "--steps", "10", "--batch", "64"], checks=TRAIN_CHECKS),
    # GPT 4 layers x 128 wide, batch 8 x 64 tokens, AdamW; each side its own init
    # (the loss must fall on both; speed only)
    Bench("gpt", quick=False, args=["--steps", "30"], quick_args=["--steps", "10"], unit="tok/s",
          targets={"train": 1.3}),
]
SKIP_EXIT = 77       # bench_util.h BENCH_EXIT_SKIP: graft cannot run it yet


class Skipped(Exception):
    pass


GEMM_TARGET = 0.90   # gr_matmul >= 90% of direct sgemm at 1024
RSS_TARGET = 1 / 3   # graft peak RSS <= 1/3 of the peer's


def cpu_pressure():
    """(kind, value): PSI 'some avg10' in percent, else the 1-minute load average."""
    try:
        with open("/proc/pressure/cpu") as f:
            for line in f:
                if line.startswith("some"):
                    return "psi10", float(line.split()[1].split("=")[1])
    except OSError:
        pass
    return "load1", os.getloadavg()[0]


def pressure_note(p):
    """'psi10 3.2' — with NOISY when other work held the CPUs for a quarter of the time."""
    noisy = p[1] > 25 if p[0] == "psi10" else p[1] > (os.cpu_count() or 1) + 1  # load counts our own run
    return "%s %.1f%s" % (p[0], p[1], " NOISY" if noisy else "")


def machine_info():
    cpu = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k.strip() in ("model name", "cpu family", "model") and k.strip() not in cpu:
                    cpu[k.strip()] = v.strip()
    except OSError:
        pass
    model = "%s (family %s model %s)" % (cpu.get("model name", "unknown"), cpu.get("cpu family", "?"),
                                         cpu.get("model", "?"))
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "git": git, "openblas_env": env}


def child_env(threads, omp_threads=None, short_spin=False, extra=None):
    """The environment of a benchmark program.
    short_spin: GOMP_SPINCOUNT=20000 (a short spin, then sleep) and, at more
    than one thread, OMP_PROC_BIND=true, unless the caller's environment
    chose otherwise: what the graft CLI runs with (src/cli/graft.c
    re-executes itself with them); the peer keeps libgomp's defaults, as
    torch users get them (but see PEER_SETUPS)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(omp_threads or threads),
               GRAFT_THREADS=str(threads), PYTHONPATH=HERE)
    if short_spin and "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        env["GOMP_SPINCOUNT"] = "20000"
    if short_spin and threads > 1 and not any(k in os.environ for k in ("OMP_PROC_BIND", "OMP_PLACES",
                                                                         "GOMP_CPU_AFFINITY")):
        env["OMP_PROC_BIND"] = "true"  # so does the CLI at more than one thread (src/cli/graft.c)
    env.update(extra or {})
    return env


def child_failed(cmd, returncode, err):
    """Raises Skipped for 'graft cannot run this yet', else exits with the program's error."""
    err.seek(0)
    if returncode == SKIP_EXIT:
        raise Skipped(err.read().strip().splitlines()[-1])
    sys.exit("bench: %s failed (exit %s):\n%s" % (" ".join(cmd), returncode, err.read()[-2000:]))


def run_child(cmd, env):
    """Runs one program; returns (records, its peak RSS in KiB from wait4). Exits on failure."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
        _, status, ru = os.wait4(p.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            child_failed(cmd, os.waitstatus_to_exitcode(status), err)
        out.seek(0)
        recs = [json.loads(line) for line in out.read().splitlines() if line.startswith("{")]
    return recs, ru.ru_maxrss


class PacedChild:
    """A benchmark program run with --blocks: it stops before each timed
    section ({"await": section} on stdout) until it reads a go on stdin."""

    def __init__(self, cmd, env, cpus):
        self.cmd, self.records = cmd, []
        self.err = tempfile.TemporaryFile("w+")
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  env=env, text=True, preexec_fn=lambda: os.sched_setaffinity(0, cpus))

    def advance(self):
        """Reads records up to the next await; returns its section, or None at the end."""
        for line in self.p.stdout:
            if line.startswith("{"):
                rec = json.loads(line)
                if "await" in rec:
                    return rec["await"]
                self.records.append(rec)
        return None

    def go(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()

    def finish(self):
        """(records, peak RSS in KiB) once the program has ended; exits on failure."""
        self.p.stdin.close()
        _, status, ru = os.wait4(self.p.pid, 0)
        self.p.returncode = os.waitstatus_to_exitcode(status)
        if self.p.returncode != 0:
            child_failed(self.cmd, self.p.returncode, self.err)
        return self.records, ru.ru_maxrss

    def close(self):
        """Kills the program if it still runs (a failure elsewhere) and drops its stderr file."""
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.err.close()


def paced_cpu():
    """The CPU a paced run is pinned to: both sides take turns on the same
    one (each CPU of a shared host is slowed at its own times)."""
    return {max(os.sched_getaffinity(0))}


def run_paced(cmds, envs, cpus, order):
    """One paced run of both sides: every timed section of one side, then the
    same section of the other, in `order`; returns {side: (records, rss)}."""
    kids = {}
    try:
        for side in order:
            kids[side] = PacedChild(cmds[side], envs[side], cpus)
        at = {side: kids[side].advance() for side in order}
        while any(at.values()):
            if len(set(at.values())) != 1:
                sys.exit("bench: the sides are out of step: %s" % at)
            for side in order:
                kids[side].go()
                at[side] = kids[side].advance()
        return {side: kids[side].finish() for side in order}
    finally:
        for k in kids.values():
            k.close()


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def case_key(r):
    return str(r.get("case", "n%s" % r.get("n")))


def peer_cmd(bench):
    return [PEER_PYTHON, os.path.join(HERE, "peer_%s.py" % bench.exe)]


def add_by_case(by_case, recs):
    """Files each record under its case: {case: [records]}."""
    for rec in recs:
        by_case.setdefault(case_key(rec), []).append(rec)
    return by_case


def float64_peer(bench, threads, quick, init_path):
    """The peer's records ({case: [record]}) with model and data in float64:
    the exact computation, consulted when graft and the float32 peer disagree."""
    recs, _ = run_child(peer_cmd(bench) + bench.flags(threads, quick, init_path) + ["--float64"],
                        child_env(threads))
    return add_by_case({}, recs)


class PeerSetup:
    """How the peer's threads are set up beyond the thread count: extra
    environment, and torch's intra-op threads when not the thread count
    (OpenBLAS keeps the thread count)."""

    def __init__(self, label, env=None, intraop=None):
        self.label, self.env, self.intraop = label, env or {}, intraop

    def cmd(self, bench):
        return peer_cmd(bench) + (["--intraop", str(self.intraop)] if self.intraop else [])

    def child_env(self, threads):
        return child_env(threads, self.intraop, extra=self.env)


# At more than one thread torch runs two pools, its OpenMP intra-op threads
# and OpenBLAS's, and by default both spin while idle; which setup is
# fastest depends on the model (seen at 2 threads, img/s: MLP 8-11k by
# default, 68-74k passive, 47-75k intra-op 1; ResNet-8 1.2-1.3k by default,
# 0.95-1.0k passive, 0.7k intra-op 1). The driver times each once and
# gives the peer the fastest.
PEER_SETUPS = (PeerSetup("default"), PeerSetup("OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE"}),
               PeerSetup("intra-op 1", intraop=1))


def fastest_peer_setup(bench, threads, quick, init_path):
    """(setup, {label: training seconds per step}): the peer's fastest setup
    at this thread count, each timed in one run of the benchmark (benchmarks
    without a training loop, gemm: blocks None, keep the default)."""
    if threads == 1 or bench.blocks is None:
        return PEER_SETUPS[0], {}
    flags = bench.flags(threads, quick, init_path)
    times = {}
    for setup in PEER_SETUPS:
        recs, _ = run_child(setup.cmd(bench) + flags, setup.child_env(threads))
        times[setup.label] = next(r["time_s"] for r in recs if r.get("case") == "train")
    return min(PEER_SETUPS, key=lambda su: times[su.label]), times


def collect(bench, build, threads, runs, quick, init_path, peer_setup):
    """Alternating runs; returns {side: {case: [records]}}, {side: [rss]}, max
    pressure. Records carry the run's index ("run"), which pairs each graft
    training block with the peer's in a paced run. Paced at one thread only:
    at two, the idle side's worker pools spin on the CPUs the other side is
    timed on (seen with the peer's fastest setup and no pause: ResNet-8
    1.24x paced against 1.46-1.51x in separate runs, with a cpu-time ratio
    of 1.54x), and waiting them out (0.15 s before each section) left both
    sides' pools cold (graft's MLP 46-57k img/s against 90-123k in
    separate runs)."""
    cmds = {"graft": [os.path.join(build, "bench_" + bench.exe)], "peer": peer_setup.cmd(bench)}
    paced = bench.blocks is not None and threads == 1
    flags = bench.flags(threads, quick, init_path, paced)
    envs = {"graft": child_env(threads, short_spin=True), "peer": peer_setup.child_env(threads)}
    by_case = {"graft": {}, "peer": {}}
    rss = {"graft": [], "peer": []}
    pressure = cpu_pressure()
    for r in range(runs):
        order = ("graft", "peer") if r % 2 == 0 else ("peer", "graft")
        if paced:
            done = run_paced({side: cmds[side] + flags for side in order}, envs, paced_cpu(), order)
        else:
            done = {side: run_child(cmds[side] + flags, envs[side]) for side in order}
        for side, (recs, kib) in done.items():
            for rec in recs:
                rec["run"] = r
            rss[side].append(kib)
            add_by_case(by_case[side], recs)
        p = cpu_pressure()
        if p[1] > pressure[1]:
            pressure = p
    return by_case, rss, pressure


def paired_blocks(by_case):
    """[(graft, peer) seconds per step] of the training blocks that ran side by
    side (same run, same block index), from a paced collect(); [] otherwise."""
    peer = {(r["run"], r["block"]): r["time_s"] for r in by_case["peer"].get("train_block", [])}
    return [(r["time_s"], peer[(r["run"], r["block"])]) for r in by_case["graft"].get("train_block", [])
            if (r["run"], r["block"]) in peer]


def agree(g, p, tol):
    return abs(g - p) <= tol * max(abs(g), abs(p), 1e-12)


def add_derived(recs):
    for r in recs:
        if "loss0" in r and "loss_final" in r:
            r["loss_drop"] = r["loss0"] - r["loss_final"]


def verify(bench, case, g_recs, p_recs):
    """[(field, graft, peer, ok)] for each check field the case reports."""
    out = []
    add_derived(g_recs)
    add_derived(p_recs)
    for field, tol in bench.checks.items():
        if field not in g_recs[0] and field not in p_recs[0]:
            continue
        if field not in g_recs[0] or field not in p_recs[0]:
            out.append((field, g_recs[0].get(field), p_recs[0].get(field), False))
            continue
        gv = [r[field] for r in g_recs]
        pv = [r[field] for r in p_recs]
        ok = all(agree(a, b, tol) for a in gv for b in pv)
        out.append((field, median(gv), median(pv), ok))
    if "loss_final" in g_recs[0] and "loss0" in g_recs[0]:  # both must have trained
        trained = all(r["loss_final"] < r["loss0"] for r in g_recs + p_recs)
        out.append(("loss_decreased", g_recs[0]["loss_final"], g_recs[0]["loss0"], trained))
    return out


def fmt_rate(v, unit):
    return "%.1f %s" % (v, unit) if v < 1e4 else "%.0f %s" % (v, unit)


class Reporter:
    def __init__(self, out_path, machine, quick):
        self.out_path, self.machine, self.quick = out_path, machine, quick
        self.peak = {}        # threads -> best direct sgemm GFLOP/s measured this run
        self.train_s = {}     # (bench, threads) -> (graft, peer) median training step seconds
        self.failures, self.misses = [], []
        self.setups = {}      # (bench, threads) -> the peer's PeerSetup label
        self.stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

    def record(self, rec):
        rec.update({"time": self.stamp, "quick": self.quick, "machine": self.machine})
        with open(self.out_path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def target(self, label, value, goal, higher_is_better=True):
        ok = value >= goal if higher_is_better else value <= goal
        if not ok:
            self.misses.append(label)
        return "ok" if ok else "MISS"

    def host(self, build, when, seconds):
        """How steady each CPU was (bench_host: FMA rate in 20 ms slices)."""
        exe = os.path.join(build, "bench_host")
        if not os.path.exists(exe):
            return
        recs, _ = run_child([exe, "--seconds", str(seconds)], child_env(1))
        print("host   %-6s | FMA rate of each CPU in 20-ms slices over %g s: %s (slow: below 3/4 of the "
              "fastest CPU's best; a shared host's CPUs slow down at times)" % (when, seconds, "; ".join(
                  "cpu%d best %.1f GF/s, slow %.0f%%" % (r["cpu"], r["best_gflops"], 100 * r["slow_share"])
                  for r in recs)), flush=True)
        self.record({"bench": "host", "case": when, "cpus": recs})

    def peer_setup(self, bench, threads, setup, times):
        self.setups[(bench.name, threads)] = setup.label
        if times:
            print("%-6s peer      t=%d | torch's threads set up as: %s, the fastest in one run each (%s)" %
                  (bench.name, threads, setup.label, ", ".join(
                      "%s %s" % (label, fmt_rate(1 / sec, "steps/s")) for label, sec in times.items())),
                  flush=True)
            self.record({"bench": bench.name, "case": "peer_setup", "threads": threads, "chosen": setup.label,
                         "train_s": times})

    def kernels(self, bench, by_case):
        """Which kernels each side runs (OpenBLAS picks its sgemm core at run time)."""
        def first(recs):  # a record that says (training blocks do not)
            return next((r for rs in recs.values() for r in rs if "blas_core" in r), {})
        g, p = first(by_case["graft"]), first(by_case["peer"])
        self.machine["graft_blas"] = g.get("blas_config")
        self.machine["peer_blas"] = p.get("blas_config")
        print("%-6s kernels: graft OpenBLAS sgemm core %s; torch %s: OpenBLAS core %s, "
              "CPU capability %s, oneDNN %s" %
              (bench.name, g.get("blas_core"), p.get("torch"), p.get("blas_core"),
               p.get("torch_cpu_capability"), "on" if p.get("mkldnn") else "off"), flush=True)

    def gemm(self, threads, by_case, pressure):
        rows = []
        for case in sorted(by_case["graft"], key=lambda k: int(k[1:])):
            g, p = by_case["graft"][case], by_case["peer"].get(case, [])
            n = g[0]["n"]
            tp = median([r["peer_s"] for r in p]) if p else float("nan")
            rows.append((case, n, g, p, median([r["graft_s"] for r in g]),
                         median([r["sgemm_s"] for r in g]), tp))
        peak = max(2.0 * n ** 3 / ts / 1e9 for _, n, _, _, _, ts, _ in rows)
        self.peak[threads] = peak
        for case, n, g, p, tg, ts, tp in rows:
            flops = 2.0 * n ** 3
            rel = max(r["reldiff"] for r in g)
            if rel > 1e-6:
                self.failures.append("gemm n=%d: graft output differs from sgemm (%.2e)" % (n, rel))
            eff = ts / tg
            tline = ""
            if n == 1024:
                tline = " (target >= %.0f%%: %s)" % (
                    100 * GEMM_TARGET, self.target("gemm1024 t%d" % threads, eff, GEMM_TARGET))
            print("gemm   n=%-5d t=%d  graft %6.1f GF/s = %3.0f%% of peak  sgemm %6.1f  torch %6.1f GF/s"
                  " | graft/sgemm %5.1f%%%s  graft/torch %.2fx | %s" %
                  (n, threads, flops / tg / 1e9, 100 * flops / tg / 1e9 / peak, flops / ts / 1e9,
                   flops / tp / 1e9, 100 * eff, tline, tp / tg, pressure_note(pressure)), flush=True)
            self.record({"bench": "gemm", "case": case, "threads": threads, "n": n,
                         "graft_s": tg, "sgemm_s": ts, "peer_s": tp,
                         "graft_gflops": flops / tg / 1e9, "sgemm_gflops": flops / ts / 1e9,
                         "peer_gflops": flops / tp / 1e9, "graft_over_sgemm": eff,
                         "graft_over_peer": tp / tg, "sgemm_peak_gflops": peak, "reldiff": rel,
                         "pressure": {pressure[0]: pressure[1]}, "runs": len(g),
                         "graft_blas": g[0].get("blas_core"),
                         "peer_blas": p[0].get("blas_core") if p else None})
        print("gemm   t=%d  measured sgemm peak %.1f GF/s (the 100%% for the GF/s of the runs below)" %
              (threads, peak), flush=True)

    def model(self, bench, threads, by_case, rss, pressure, exact=None):
        """exact: a function returning the float64 peer's records by case (it
        runs once, however many cases consult it); when graft and the float32
        peer disagree, graft passes if it agrees with those (a wrong
        computation cannot match the exact one), and the line says the
        float32 peer drifted."""
        rss_g, rss_p = max(rss["graft"]), max(rss["peer"])
        blocks = paired_blocks(by_case)
        for case in by_case["graft"]:
            if case == "train_block":
                continue
            g, p = by_case["graft"][case], by_case["peer"].get(case)
            if not p:
                self.failures.append("%s %s: the peer reported no such case" % (bench.name, case))
                continue
            tg, tp = median([r["time_s"] for r in g]), median([r["time_s"] for r in p])
            items = g[0].get("items", 1)
            ratio = tp / tg
            pairing = None
            if case == "train" and blocks:
                tg, tp = median([b[0] for b in blocks]), median([b[1] for b in blocks])
                q = sorted(b[1] / b[0] for b in blocks)
                ratio = median(q)
                pairing = {"pairs": len(q), "q1": q[len(q) // 4], "q3": q[(3 * len(q)) // 4]}
            if case == "train":
                self.train_s[(bench.name, threads)] = (tg, tp)
            checks = verify(bench, case, g, p)
            bad = [c for c in checks if not c[3]]
            drifted, checks64 = [], None
            if bad and exact:
                ref = exact().get(case)
                checks64 = verify(bench, case, g, ref) if ref else None
                if checks64 and all(c[3] for c in checks64):
                    drifted, bad = [c[0] for c in bad], []
            for c in bad:
                self.failures.append("%s %s t=%d: %s graft %s vs peer %s" % (bench.name, case, threads, *c[:3]))
            parts = ["%-6s %-9s t=%d" % (bench.name, case, threads)]
            setup = self.setups.get((bench.name, threads), "default")
            if setup != "default":
                parts[0] += " (torch: %s)" % setup
            if case == "train" or case.startswith("train"):
                parts.append("graft %s  torch %s" % (fmt_rate(items / tg, bench.unit), fmt_rate(items / tp, bench.unit)))
            else:
                parts.append("graft %.3f ms  torch %.3f ms" % (1e3 * tg, 1e3 * tp))
            tgt = bench.targets.get(case)
            tline = " (target >= %.1fx: %s)" % (tgt, self.target("%s %s t%d" % (bench.name, case, threads), ratio, tgt)) if tgt else ""
            parts.append("graft/torch %.2fx%s" % (ratio, tline))
            if pairing:
                parts.append("median of %d paired blocks, middle half %.2f-%.2fx" %
                             (pairing["pairs"], pairing["q1"], pairing["q3"]))
            cpu_ratio = None
            if "cpu_s" in g[0] and "cpu_s" in p[0]:
                cpu_ratio = median([r["cpu_s"] for r in p]) / median([r["cpu_s"] for r in g])
                parts.append("cpu-time ratio %.2fx" % cpu_ratio)
            if "flops" in g[0] and threads in self.peak:
                gf = g[0]["flops"] / tg / 1e9
                parts.append("%.1f GF/s = %.0f%% of sgemm" % (gf, 100 * gf / self.peak[threads]))
            if checks:
                parts.append("same result: %s" % ("NO (" + ", ".join(c[0] for c in bad) + ")" if bad else
                                                   "yes (= float64 peer; float32 peer drifted: %s)" % ", ".join(drifted)
                                                   if drifted else "yes"))
            parts.append("rss %.0f/%.0f MB = %.2f (target <= %.2f: %s)" % (
                rss_g / 1024, rss_p / 1024, rss_g / rss_p, RSS_TARGET,
                self.target("%s rss t%d" % (bench.name, threads), rss_g / rss_p, RSS_TARGET, False)))
            parts.append(pressure_note(pressure))
            print(" | ".join(parts), flush=True)
            self.record({"bench": bench.name, "case": case, "threads": threads, "graft_s": tg,
                         "peer_s": tp, "items": items, "graft_over_peer": ratio,
                         "graft_over_peer_cpu_time": cpu_ratio,
                         "graft_rate": items / tg, "peer_rate": items / tp,
                         "flops": g[0].get("flops"), "checks": [list(c) for c in checks], "checks_float64": [list(c) for c in checks64] if checks64 else None,
                         "graft_rss_kb": rss_g, "peer_rss_kb": rss_p,
                         "pressure": {pressure[0]: pressure[1]},
                         "graft_blas": g[0].get("blas_core"), "peer_blas": p[0].get("blas_core"),
                         "peer_cpu": p[0].get("torch_cpu_capability"), "runs": len(g), "paired_blocks": pairing,
                         "peer_torch_threads": p[0].get("torch_threads"), "peer_setup": setup})
        self.lora_vs_full(bench, threads, pressure)

    def lora_vs_full(self, bench, threads, pressure):
        """After the LoRA benchmark: its step time over the full fine-tuning step's, each side."""
        full, lora = self.train_s.get(("ft", threads)), self.train_s.get(("lora", threads))
        if bench.name != "lora" or not full or not lora:
            return
        print("lora   vs ft     t=%d | LoRA step / full fine-tuning step: graft %.2f (%.2f vs %.2f ms), "
              "torch %.2f (%.2f vs %.2f ms) | %s" %
              (threads, lora[0] / full[0], 1e3 * lora[0], 1e3 * full[0], lora[1] / full[1], 1e3 * lora[1],
               1e3 * full[1], pressure_note(pressure)), flush=True)
        self.record({"bench": "lora", "case": "lora_over_full", "threads": threads,
                     "graft_ratio": lora[0] / full[0], "peer_ratio": lora[1] / full[1],
                     "pressure": {pressure[0]: pressure[1]}})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="comma-separated benchmark names")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, help="runs of each side (default 5, quick 2)")
    ap.add_argument("--out", default=os.path.join(HERE, "results.jsonl"))
    ap.add_argument("--peer-intraop", type=int,
                    help="torch's intra-op (OpenMP) threads, OpenBLAS keeps --threads (default: at more than "
                         "one thread, the fastest of the peer setups in PEER_SETUPS, timed once each)")
    ap.add_argument("--host-seconds", type=float,
                    help="how long bench_host probes each CPU before and after (default 3, quick 0.5)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    a = ap.parse_args()
    runs = a.runs or (2 if a.quick else 5)
    only = set(a.only.split(",")) if a.only else None
    machine = machine_info()
    rep = Reporter(a.out, machine, a.quick)
    print("machine: %s, %d cores, kernel %s, graft %s, OpenBLAS env %s; %d runs each side" %
          (machine["cpu"], machine["cores"], machine["kernel"], machine["git"],
           machine["openblas_env"] or "none", runs), flush=True)
    host_s = a.host_seconds or (0.5 if a.quick else 3)
    rep.host(a.build, "before", host_s)
    with tempfile.TemporaryDirectory(prefix="graft-bench-") as tmp:
        for bench in BENCHES:
            if (only and bench.name not in only) or (a.quick and not bench.quick):
                continue
            exe = os.path.join(a.build, "bench_" + bench.exe)
            if not os.path.exists(exe):
                print("%-6s skipped: %s not built (its ops are not on main yet)" % (bench.name, exe), flush=True)
                continue
            init = None
            if bench.init:
                init = os.path.join(tmp, bench.name + ".f32")
                subprocess.run([exe, "--write-init", init] + (bench.quick_args if a.quick else bench.args),
                               check=True)
            for t in [int(x) for x in a.threads.split(",")]:
                try:
                    if a.peer_intraop:
                        setup, times = PeerSetup("intra-op %d" % a.peer_intraop, intraop=a.peer_intraop), {}
                    else:
                        setup, times = fastest_peer_setup(bench, t, a.quick, init)
                    rep.peer_setup(bench, t, setup, times)
                    by_case, rss, pressure = collect(bench, a.build, t, runs, a.quick, init, setup)
                except Skipped as e:
                    print("%-6s skipped: %s" % (bench.name, e), flush=True)
                    break
                if t == int(a.threads.split(",")[0]):
                    rep.kernels(bench, by_case)
                if bench.name == "gemm":
                    rep.gemm(t, by_case, pressure)
                else:
                    rep.model(bench, t, by_case, rss, pressure,
                              exact=functools.lru_cache(maxsize=None)(lambda: float64_peer(bench, t, a.quick, init))
                              if init else None)
    rep.host(a.build, "after", host_s)
    if rep.failures:
        print("FAILED: graft and the peer disagree:\n  " + "\n  ".join(rep.failures))
        return 1
    print("targets missed: %s" % (", ".join(rep.misses) if rep.misses else "none"))
    return 1 if (a.strict and rep.misses) else 0


if __name__ == "__main__":
    sys.exit(main())
