import json

import numpy as np
import pytest
import torch
from conftest import make_episode

from demos.cache import frame_cache, lowdim_cache
from demos.errors import DemoFolderError
from demos.stats import Normalizer, load_stats
from demos.windows import WindowDataset


def test_window_contents_and_padding(folder):
    ds = WindowDataset(folder, n_obs=3, horizon=5, goal="final", progress=False)
    assert len(ds) == 20 + 25 + 30
    item = ds[20]  # episode 1, t = 0
    assert item["episode"] == 1 and item["t"] == 0
    # obs before the start repeat the first step; pos[t] = (t, 2t)
    np.testing.assert_array_equal(item["obs.pos"][:, 0], [0, 0, 0])
    np.testing.assert_array_equal(item["action"][:, 0], 1 + np.arange(5))  # action = t + seed
    assert not item["action_is_pad"].any()
    item = ds[20 + 23]  # episode 1, t = 23 of 25
    np.testing.assert_array_equal(item["obs.pos"][:, 0], [21, 22, 23])
    np.testing.assert_array_equal(item["action"][:, 0], 1 + np.array([23, 24, 24, 24, 24]))
    np.testing.assert_array_equal(item["action_is_pad"], [False, False, True, True, True])
    assert item["goal_index"] == 24
    np.testing.assert_array_equal(item["goal.pos"], [24, 48])
    frames = folder.read_frames(1, "front")
    np.testing.assert_array_equal(item["obs.front"], frames[21:24])
    np.testing.assert_array_equal(item["goal.front"], frames[24])


def test_embedding_history_and_goal_rows(folder, tmp_path):
    # per-episode (T, D) arrays, memory-mapped like the decomposer's cache; row t = (t, seed)
    arrays = []
    for i, T in enumerate((20, 25, 30)):
        np.save(tmp_path / f"{i}.npy", np.column_stack([np.arange(T), np.full(T, i)]).astype("f4"))
        arrays.append(np.load(tmp_path / f"{i}.npy", mmap_mode="r"))
    ds = WindowDataset(
        folder, n_obs=3, goal="final", embeddings={"front_emb": arrays}, progress=False
    )
    item = ds[20 + 1]  # episode 1, t = 1
    np.testing.assert_array_equal(item["obs.front_emb"], [[0, 1], [0, 1], [1, 1]])
    np.testing.assert_array_equal(item["goal.front_emb"], [24, 1])
    assert item["obs.front_emb"].dtype == np.float32
    with pytest.raises(DemoFolderError, match="episodes/000001") as e:
        WindowDataset(folder, embeddings={"front_emb": [arrays[0]] * 3}, progress=False)
    assert "front_emb" in str(e.value)


def test_future_goals_lie_ahead_and_vary(folder):
    ds = WindowDataset(folder, goal="future", progress=False)
    goals = [ds[50 + 5]["goal_index"] for _ in range(200)]  # episode 2, t = 5, T = 30
    assert min(goals) >= 5 and max(goals) <= 29
    assert len(set(goals)) > 10


def test_subgoal_goals_follow_given_indices(folder):
    idx = {ep: np.full(len(folder.read_lowdim(ep)["action"]), 7) for ep in folder.episode_ids}
    ds = WindowDataset(folder, goal="subgoal", goal_indices=idx, progress=False)
    item = ds[20 + 3]
    assert item["goal_index"] == 7
    np.testing.assert_array_equal(item["goal.pos"], [7, 14])
    idx["000001"] = idx["000001"][:-1]
    with pytest.raises(Exception, match="episodes/000001: goal indices have shape"):
        WindowDataset(folder, goal="subgoal", goal_indices=idx, progress=False)


def test_stats_are_those_of_all_steps_and_follow_new_episodes(folder):
    stats = load_stats(folder)
    action = np.concatenate([folder.read_lowdim(e)["action"] for e in folder.episode_ids])
    np.testing.assert_allclose(stats["action"]["mean"], action.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats["action"]["std"], action.std(0), rtol=1e-5)
    np.testing.assert_allclose(stats["pos"]["max"], [29, 58])
    assert json.loads((folder.root / "stats.json").read_text())["features"] == stats
    folder.add_episode(make_episode(40, seed=3))
    assert load_stats(folder)["pos"]["max"] == [39, 78]
    assert len(lowdim_cache(folder).ends) == 4


def test_normalizer_min_max_and_back():
    stats = {"min": [0.0, -2.0, 5.0], "max": [10.0, 2.0, 5.0], "mean": [0] * 3, "std": [1] * 3}
    norm = Normalizer.from_stats(stats)
    x = np.array([[0.0, 2.0, 5.0], [10.0, -2.0, 5.0]], np.float32)
    np.testing.assert_allclose(norm.normalize(x), [[-1, 1, 0], [1, -1, 0]])
    t = torch.tensor(x)
    torch.testing.assert_close(norm.unnormalize(norm.normalize(t)), t)


def test_frame_cache_matches_decoding_is_reused_and_rebuilt(folder):
    cached = frame_cache(folder, "front", progress=False)
    np.testing.assert_array_equal(cached[2], folder.read_frames(2, "front"))
    npy = folder.root / "cache/frames/32x48/000002/front.npy"
    mtime = npy.stat().st_mtime_ns
    frame_cache(folder, "front", progress=False)
    assert npy.stat().st_mtime_ns == mtime
    small = frame_cache(folder, "front", (16, 16), progress=False)
    assert small[0].shape == (20, 16, 16, 3)
    # replace episode 2's video: its cache entry is rebuilt
    from demos.video import write_video

    write_video(folder.video_path(2, "front"), np.zeros((30, 32, 48, 3), np.uint8), 10)
    assert frame_cache(folder, "front", progress=False)[2].max() <= 3


def test_dataloader_batches(folder):
    ds = WindowDataset(folder, n_obs=2, horizon=4, progress=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, num_workers=2)
    batch = next(iter(loader))
    assert batch["obs.front"].shape == (8, 2, 32, 48, 3)
    assert batch["obs.front"].dtype == torch.uint8
    assert batch["action"].shape == (8, 4, 3)
    assert batch["goal.pos"].shape == (8, 2)
