"""peer_gemm — torch.matmul on the square sizes of bench/bench_gemm.c.
Same sizes, thread count and timing budget; one JSON line per size."""
import torch

import peerlib as pl


def bench_size(n, threads, budget):
    g = torch.Generator().manual_seed(1234)
    a = torch.rand(n, n, generator=g) * 2 - 1
    b = torch.rand(n, n, generator=g) * 2 - 1
    torch.matmul(a, b)
    t0 = pl.now()
    torch.matmul(a, b)
    est = pl.now() - t0
    reps = max(3, min(200, int(budget / 2 / max(est, 1e-6))))
    times = []
    for _ in range(reps):
        t0 = pl.now()
        torch.matmul(a, b)
        times.append(pl.now() - t0)
    pl.emit({"bench": "gemm", "n": n, "threads": threads, "reps": reps, "peer_s": pl.median(times)})


def main():
    a = pl.parse_args()
    with torch.no_grad():
        for n in [256, 512, 1024] if a.quick else [256, 512, 1024, 2048]:
            bench_size(n, a.threads, 0.15 if a.quick else 0.6)


if __name__ == "__main__":
    main()
