"""Synthetic demo folders for benchmarks: moving shapes on two cameras, smooth low-dim signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from demos import DatasetInfo, DemoFolder, Episode


def synthetic_episode(rng: np.random.Generator, T: int, size: tuple[int, int], cameras) -> Episode:
    h, w = size
    t = np.linspace(0, 1, T)[:, None]
    phase = rng.uniform(0, 2 * np.pi, size=(1, 7))
    joints = np.sin(2 * np.pi * t + phase).astype(np.float32)
    eef = np.cumsum(rng.normal(scale=0.01, size=(T, 3)), 0).astype(np.float32)
    frames = {}
    yy, xx = np.mgrid[:h, :w]
    for c, cam in enumerate(cameras):
        cx = (w * (0.2 + 0.6 * t[:, 0]) + 5 * c).astype(int)
        cy = (h * 0.5 + 0.3 * h * np.sin(3 * t[:, 0] + c)).astype(int)
        video = np.empty((T, h, w, 3), np.uint8)
        for i in range(T):
            blob = (xx - cx[i]) ** 2 + (yy - cy[i]) ** 2 < (h // 8) ** 2
            video[i] = 40
            video[i][blob] = (200, 80 + 40 * c, 60)
        frames[cam] = video
    return Episode(
        action=np.diff(np.concatenate([joints, joints[-1:]]), axis=0),
        state={"joint_pos": joints, "eef_pos": eef},
        frames=frames,
        stage=(t[:, 0] * 3).astype(np.int64).clip(0, 2),
        success=True,
        task="synthetic",
    )


def make_folder(
    root: Path, episodes: int, T: int = 100, size=(84, 84), seed: int = 0
) -> DemoFolder:
    cameras = ("agentview", "wrist")
    info = DatasetInfo(
        fps=20,
        action_dim=7,
        state={"joint_pos": 7, "eef_pos": 3},
        cameras={c: size for c in cameras},
        robot="synthetic",
    )
    folder = DemoFolder.create(root, info)
    rng = np.random.default_rng(seed)
    for _ in range(episodes - len(folder)):
        folder.add_episode(synthetic_episode(rng, T + int(rng.integers(-10, 10)), size, cameras))
    return folder
