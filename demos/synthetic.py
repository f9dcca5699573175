"""A procedurally drawn three-stage task: demo folders for smoke tests, benchmarks and the demo.

No simulator needed: a blob crosses the image in three stages while the joint signals move
smoothly; the ground-truth stage is stored, so decomposers can be scored on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .episode import Episode
from .folder import DemoFolder
from .schema import DatasetInfo


def synthetic_episode(
    rng: np.random.Generator, T: int, size: tuple[int, int], cameras: tuple[str, ...]
) -> Episode:
    """A blob visits three random waypoints in turn, easing in and out of each."""
    h, w = size
    waypoints = rng.uniform(0.15, 0.85, size=(4, 2))
    bounds = np.sort(rng.uniform(0.25, 0.75, size=2)) * np.array([0.9, 1.1])
    bounds = np.concatenate([[0.0], bounds.clip(0.2, 0.8), [1.0]])
    s = np.linspace(0, 1, T)
    stage = np.searchsorted(bounds[1:-1], s, side="right")
    local = (s - bounds[stage]) / (bounds[stage + 1] - bounds[stage])
    ease = 0.5 - 0.5 * np.cos(np.pi * local.clip(0, 1))
    xy = waypoints[stage] + (waypoints[stage + 1] - waypoints[stage]) * ease[:, None]
    eef = np.column_stack([xy, 0.1 * stage]).astype(np.float32)
    joints = np.tanh(eef @ rng.normal(size=(3, 7))).astype(np.float32)
    velocity = np.diff(eef, axis=0, append=eef[-1:]) * 20
    grip = np.where(stage == 1, 1.0, -1.0)[:, None]  # "carrying" during the middle stage
    action = np.hstack([velocity, grip])

    yy, xx = np.mgrid[:h, :w]
    colours = np.array([(220, 60, 60), (60, 200, 80), (70, 90, 230)], np.uint8)
    frames = {}
    for c, cam in enumerate(cameras):
        video = np.full((T, h, w, 3), 30 + 20 * c, np.uint8)
        cx, cy = xy[:, 0] * w, (xy[:, 1] if c == 0 else 1 - xy[:, 1]) * h
        for i in range(T):
            blob = (xx - cx[i]) ** 2 + (yy - cy[i]) ** 2 < (h / 8) ** 2
            video[i][blob] = colours[stage[i]]
        frames[cam] = video
    return Episode(
        action=action.astype(np.float32),
        state={"joint_pos": joints, "eef_pos": eef},
        frames=frames,
        stage=stage.astype(np.int64),
        success=True,
        task="visit three waypoints",
    )


def make_folder(
    root: Path, episodes: int, T: int = 100, size=(84, 84), seed: int = 0
) -> DemoFolder:
    cameras = ("agentview", "wrist")
    info = DatasetInfo(
        fps=20,
        action_dim=4,
        state={"joint_pos": 7, "eef_pos": 3},
        cameras={c: size for c in cameras},
        robot="synthetic",
        action_kind="delta_ee",
    )
    folder = DemoFolder.create(root, info)
    rng = np.random.default_rng(seed)
    for _ in range(episodes - len(folder)):
        folder.add_episode(synthetic_episode(rng, T + int(rng.integers(-10, 10)), size, cameras))
    return folder
