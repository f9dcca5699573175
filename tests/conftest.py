import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from demos import DatasetInfo, DemoFolder, Episode  # noqa: E402


def make_episode(T: int, seed: int = 0, cameras=("front",), size=(32, 48), task=None) -> Episode:
    """An episode whose values encode where they come from: action[t] = t + offset."""
    rng = np.random.default_rng(seed)
    t = np.arange(T, dtype=np.float32)[:, None]
    frames = {}
    for c, cam in enumerate(cameras):
        video = np.zeros((T, *size, 3), np.uint8)
        video[..., 0] = ((9 * np.arange(T)) % 255)[:, None, None]  # red encodes the frame index
        video[..., 1] = 40 * (c + 1)
        frames[cam] = video
    return Episode(
        action=np.hstack([t + seed, rng.normal(size=(T, 2))]).astype(np.float32),
        state={"pos": np.hstack([t, t * 2]).astype(np.float32), "grip": rng.random((T, 1))},
        frames=frames,
        stage=(np.arange(T) * 3 // T).astype(np.int64),
        success=True,
        task=task,
    )


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread: on a shared 2-core machine two threads can stall for 10x
    longer. Modules that train or sample use it (``pytestmark``); the setting is restored."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def info():
    return DatasetInfo(
        fps=10,
        action_dim=3,
        state={"pos": 2, "grip": 1},
        cameras={"front": (32, 48)},
        robot="test",
        action_kind="delta_ee",
    )


@pytest.fixture
def folder(tmp_path, info):
    f = DemoFolder.create(tmp_path / "demo", info)
    for i, T in enumerate((20, 25, 30)):
        f.add_episode(make_episode(T, seed=i, task="reach" if i < 2 else "push"))
    return f
