"""Random-access training-window sampling from a 200-episode, 84x84, two-camera demo folder.

Prints windows/s on one core for the cached path (memory-mapped frames) and, as the peer in the
same run, for decoding each window's frames from the mp4 files (what a loader without a frame
cache does). Usage: python benchmarks/bench_windows.py [--episodes 200] [--dir PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from demos.cache import frame_cache
from demos.synthetic import make_folder
from demos.windows import WindowDataset


def decode_window(folder, ep: str, cam: str, t: int, n_obs: int) -> np.ndarray:
    """The peer: seek in the mp4 and decode the frames a window needs."""
    import cv2

    cap = cv2.VideoCapture(str(folder.video_path(ep, cam)))
    start = max(0, t - n_obs + 1)
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    out = [cap.read()[1] for _ in range(t - start + 1)]
    cap.release()
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--windows", type=int, default=50_000)
    parser.add_argument("--dir", type=Path, help="reuse/keep the folder here (default: temp)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = args.dir or Path(tempfile.mkdtemp()) / "bench_demo"

    t0 = time.perf_counter()
    folder = make_folder(root, args.episodes)
    t1 = time.perf_counter()
    for cam in folder.info.cameras:
        frame_cache(folder, cam)
    t2 = time.perf_counter()
    ds = WindowDataset(folder, n_obs=2, horizon=16, goal="future")
    frames = int(ds.ends[-1])
    print(f"folder: {args.episodes} episodes, {frames} steps, 2 cameras 84x84 ({root})")
    print(f"writing the folder: {t1 - t0:.1f} s; building the frame cache: {t2 - t1:.1f} s")

    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(ds), args.windows)
    for r in rows[:2000]:  # warm the page cache
        ds[int(r)]
    t = time.perf_counter()
    for r in rows:
        ds[int(r)]
    cached = args.windows / (time.perf_counter() - t)

    n_peer = 300
    t = time.perf_counter()
    for r in rows[:n_peer]:
        e = int(ds._episode[r])
        ep, local = ds.episode_ids[e], int(r - ds.starts[e])
        for cam in ds.cameras:
            decode_window(folder, ep, cam, local, 2)
    decoded = n_peer / (time.perf_counter() - t)

    print(f"cached windows/s (1 thread):        {cached:,.0f}")
    print(f"decode-per-window windows/s (peer): {decoded:,.0f}")
    print(f"ratio cached / decode:              {cached / decoded:,.0f}x")


if __name__ == "__main__":
    main()
