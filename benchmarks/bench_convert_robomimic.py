"""How fast robomimic HDF5 -> demo folder runs on a file the size of a robomimic image dataset.

    .venv/bin/python benchmarks/bench_convert_robomimic.py [--episodes 200] [--no-images]

Builds a synthetic file (random 100-150 steps per demo, Lift-like low-dim obs, one 84x84
camera with a moving gradient) in a temp dir, converts it once and prints the rates.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from demos.convert.robomimic import convert_robomimic

SIZE = 84
LOWDIM = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "object": 10}


def frames(T: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth moving gradients plus mild noise: encodes like a rendered scene, not like static."""
    y, x = np.mgrid[:SIZE, :SIZE]
    t = np.arange(T)[:, None, None]
    base = np.stack([x + t, y + 2 * t, (x + y) // 2 + t], axis=-1) % 256
    noise = rng.integers(0, 8, base.shape)
    return (base + noise).clip(0, 255).astype(np.uint8)


def build(path: Path, episodes: int, images: bool) -> int:
    """Write the file; return the number of steps in it."""
    rng, image_rng = np.random.default_rng(0), np.random.default_rng(1)  # same steps either way
    env_kwargs = {"control_freq": 20, "robots": ["Panda"]}
    env_kwargs["controller_configs"] = {"type": "OSC_POSE", "control_delta": True}
    total = 0
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "env_kwargs": env_kwargs})
        for i in range(episodes):
            T = int(rng.integers(100, 151))
            demo = data.create_group(f"demo_{i}")
            demo["actions"] = rng.uniform(-1, 1, (T, 7))
            demo["states"] = rng.normal(size=(T, 32))
            demo["rewards"] = np.r_[np.zeros(T - 1), 1.0]
            for key, dim in LOWDIM.items():
                demo[f"obs/{key}"] = rng.normal(size=(T, dim))
            if images:
                demo["obs/agentview_image"] = frames(T, image_rng)
            demo.attrs["num_samples"] = T
            total += T
        data.attrs["total"] = total
    return total


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--no-images", action="store_true", help="low-dim obs only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "bench.hdf5", Path(tmp) / "out"
        t = time.perf_counter()
        steps = build(src, args.episodes, not args.no_images)
        built = time.perf_counter() - t
        t = time.perf_counter()
        convert_robomimic(src, out, progress=False)
        took = time.perf_counter() - t
        cams = "no camera" if args.no_images else f"1 camera {SIZE}x{SIZE}"
        print(f"input : {args.episodes} episodes, {steps} steps, {cams}")
        print(f"hdf5  : {src.stat().st_size / 1e6:.1f} MB (built in {built:.1f} s)")
        print(f"output: {du(out) / 1e6:.1f} MB")
        print(f"convert_robomimic: {took:.2f} s")
        print(f"  {args.episodes / took:.1f} episodes/s, {steps / took:.0f} frames/s")


if __name__ == "__main__":
    main()
