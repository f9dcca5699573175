"""decompose() on precomputed embeddings: time per call, linearity in T, and the dense peer.

Embeddings are a random walk with segments (D=512, float32): every 100-300 frames the walk
heads for a new random goal point, so there are subgoals to find at every length. For each T
it prints the median ms per call of ``decompose`` (banded RBF smoother, windowed backward
search) and ms per 1000 frames (flat when the cost is linear), and, up to --dense-max frames,
the same run of the reference form as UVD's code computes it (whole prefix, dense T x T kernel,
per subgoal) with the ratio dense / banded and whether both chose the same subgoals.

Usage: python benchmarks/bench_decompose.py [--lengths 500 1000 ...] [--dense-max 5000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import numpy as np

from decomposer import decompose
from decomposer.uvd import decompose_curves, smooth_dense


def segmented_walk(T: int, dim: int = 512, seed: int = 0) -> np.ndarray:
    """Straight runs toward random goal points (100-300 frames each) plus random-walk noise."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(100, 301, size=T // 100 + 1)
    goals = rng.normal(size=(len(lengths) + 1, dim))
    runs = [
        goals[k] + (goals[k + 1] - goals[k]) * (np.arange(n)[:, None] / n)
        for k, n in enumerate(lengths)
    ]
    walk = np.concatenate(runs)[:T]
    return (walk + 0.02 * rng.normal(size=walk.shape).cumsum(axis=0)).astype(np.float32)


def median_ms(fn, min_runs: int, min_s: float) -> float:
    """Median wall time of fn() in ms over at least min_runs runs and min_s seconds."""
    times, start = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_s:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[500, 1000, 2000, 5000, 10000, 20000]
    )
    parser.add_argument("--dense-max", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args()

    dense = partial(smooth_dense, gamma=0.08)
    print(f"decompose(min_interval=18, gamma=0.08, smoother='rbf'), D={args.dim}, float32")
    print(
        f"{'T':>6} {'subgoals':>8} {'ms/call':>9} {'ms/1k fr':>9}"
        f" {'dense ms':>10} {'dense/banded':>12} {'same':>5}"
    )
    for n in args.lengths:
        e = segmented_walk(n, args.dim)
        sub = decompose(e)
        ms = median_ms(lambda e=e: decompose(e), min_runs=7, min_s=0.5)
        row = f"{n:>6} {len(sub):>8} {ms:>9.2f} {ms / n * 1e3:>9.3f}"
        if n <= args.dense_max:
            ref = decompose_curves(e, smoother=dense).subgoals
            dms = median_ms(
                lambda e=e: decompose_curves(e, smoother=dense),
                min_runs=3 if n >= 2000 else 5,
                min_s=0.0,
            )
            row += f" {dms:>10.1f} {dms / ms:>12.0f} {str(ref == sub):>5}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
