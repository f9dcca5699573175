"""Encoding throughput (frames/s) per backbone at 224x224 on this machine, and peak memory.

Every backbone runs in a fresh process with randomly initialised weights written in its
published layout (same code path as real weights: read, check, load), on frames streamed
from a generator (as ``demos.iter_frames`` feeds them), ``--chunk`` frames per forward pass.
It reports frames/s after one warm-up chunk, and the peak resident memory (ru_maxrss) above
the process's level after the warm-up: that is what grows with the video if encoding is not
bounded. ``--long N`` runs ``--long-names`` on one N-frame stream (a CPU ResNet on N/10) and
reports the peak above warm-up after the first tenth, the first half and at the end: the
last two equal when memory is bounded by the chunk, not by the video. The offline backbones
are fitted on a small synthetic folder.

Usage: python benchmarks/bench_backbones.py [--frames 64] [--chunk 32] [--long 10000]
       [--names resnet18 resnet50 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PRETRAINED = ["resnet18", "resnet50", "r3m", "vip", "clip_rn50", "liv", "dinov2_vits14"]
OFFLINE = ["pixels", "vip_local", "state"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream(n: int, size: int = 224, seed: int = 0, marks: dict | None = None):
    """n frames from a generator; ``marks`` {frame index: None} gets the peak RSS there."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8)
    for i in range(n):
        if marks is not None and i in marks:
            marks[i] = rss_mb()
        yield base[i % 8]


def one(name: str, frames: int, chunk: int, workdir: Path) -> dict:
    import torch

    from decomposer.fitting import fit_backbone
    from decomposer.weights import load_backbone, random_weights
    from demos.synthetic import make_folder

    if name in OFFLINE:
        root = workdir / "syn"
        folder = make_folder(root, 3, T=80, size=(224, 224)) if not root.exists() else None
        weights = fit_backbone(
            name, folder or root, **({"steps": 50} if name == "vip_local" else {})
        )
    else:
        weights = workdir / f"{name}.pt"
        if not weights.exists():
            random_weights(name, weights)
    enc = load_backbone(name, weights, device="cpu", chunk=chunk)
    if name == "state":
        rows = np.random.default_rng(0).normal(size=(frames, enc.meta["in_dim"]))
        enc.embed(rows[:chunk])
        base = rss_mb()
        t = time.perf_counter()
        out = enc.embed(rows)
        dt = time.perf_counter() - t
        tenth = half = float("nan")
    else:
        enc.embed(stream(chunk))  # warm-up
        base = rss_mb()
        marks = {frames // 10: None, frames // 2: None}
        t = time.perf_counter()
        out = enc.embed(stream(frames, marks=marks))
        dt = time.perf_counter() - t
        tenth = marks[frames // 10] - base
        half = marks[frames // 2] - base
    assert out.shape == (frames, enc.dim)
    return {
        "name": name,
        "frames": frames,
        "chunk": chunk,
        "dim": enc.dim,
        "frames_per_s": frames / dt,
        "peak_rss_mb": rss_mb(),
        "peak_above_warm_mb": rss_mb() - base,
        "peak_above_warm_at_tenth_mb": tenth,
        "peak_above_warm_at_half_mb": half,
        "threads": torch.get_num_threads(),
    }


def run_child(name: str, frames: int, chunk: int, workdir: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", name, "--frames", str(frames)]
    cmd += ["--chunk", str(chunk), "--workdir", str(workdir)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{name}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--names", nargs="*", default=PRETRAINED + OFFLINE)
    ap.add_argument("--frames", type=int, default=64, help="frames per pretrained backbone")
    ap.add_argument("--offline-frames", type=int, default=2000)
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--long", type=int, default=10000, help="stream length for the bound check")
    ap.add_argument("--long-names", nargs="*", default=["pixels", "vip_local", "resnet18"])
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one(args.child, args.frames, args.chunk, Path(args.workdir))))
        return

    print(
        f"# backbone encoding, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}; 224x224 frames, chunk {args.chunk}, random weights"
    )
    print("| backbone | dim | frames | frames/s | peak RSS (MB) | peak above warm-up (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.names:
            n = args.offline_frames if name in OFFLINE else args.frames
            r = run_child(name, n, args.chunk, work)
            print(
                f"| {name} | {r['dim']} | {n} | {r['frames_per_s']:.1f} | "
                f"{r['peak_rss_mb']:.0f} | {r['peak_above_warm_mb']:.0f} |",
                flush=True,
            )
        if args.long:
            print(f"\nbounded memory: one stream of {args.long} frames (a CPU ResNet: 1/10)")
            print(
                "| backbone | frames | frames/s | peak above warm-up (MB) after 1/10 "
                "| after 1/2 | at the end |"
            )
            print("|---|---:|---:|---:|---:|---:|")
            for name in args.long_names:
                n = args.long if name in OFFLINE else max(10 * args.chunk, args.long // 10)
                r = run_child(name, n, args.chunk, work)
                print(
                    f"| {name} | {n} | {r['frames_per_s']:.1f} | "
                    f"{r['peak_above_warm_at_tenth_mb']:.0f} | "
                    f"{r['peak_above_warm_at_half_mb']:.0f} | {r['peak_above_warm_mb']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
