"""backend=ray on a local Ray instance: the same per-seed results as the local pool, videos
and eval_info.json in the same places, and a lost worker costing only its episode."""

from functools import partial

import numpy as np
import pytest

ray = pytest.importorskip("ray")  # in requirements.lock; skipped only where it is not installed

from sim.evaluate import evaluate  # noqa: E402
from sim.ray_pool import run_on_ray  # noqa: E402
from sim.testing import TINY_MLP, FlakyRunner, expert_folder, train_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    """One local instance for the module (each call would otherwise start its own)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("ray")
    folder = expert_folder(root / "lift", "lift", range(2))
    return train_checkpoint(folder.root, root / "run", "final", policy=TINY_MLP, steps=4,
                            batch_size=16)  # fmt: skip


def _failed(i, why, wall):
    return {"index": i, "error": why}


def test_ray_gives_the_local_pools_episodes(local_ray, checkpoint, tmp_path):
    kw = dict(episodes=3, seed=11, workers=2, videos=1, max_steps=12, progress=False)
    local = evaluate(checkpoint, "lift", out_dir=tmp_path / "local", **kw)
    remote = evaluate(checkpoint, "lift", out_dir=tmp_path / "ray", backend="ray", **kw)
    for a, b in zip(local.episodes, remote.episodes, strict=True):
        assert (a["seed"], a["success"], a["length"]) == (b["seed"], b["success"], b["length"])
        np.testing.assert_allclose(a["final_eef_pos"], b["final_eef_pos"], atol=1e-6)
    assert [e["error"] for e in remote.episodes] == [None] * 3
    video = tmp_path / "ray" / remote.episodes[0]["video"]
    assert video.stat().st_size > 1000  # filmed on the actor, written here from its bytes
    assert (tmp_path / "ray" / "eval_info.json").is_file()


def test_a_lost_worker_costs_one_retry_then_one_episode(local_ray, tmp_path):
    results = {}
    make = partial(FlakyRunner, str(tmp_path), crash_once=[1], crash_always=[3])
    run_on_ray(make, range(5), 2, lambda r: results.update({r["index"]: r}), _failed)
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert "error" not in results[1]  # lost once, rerun on a fresh actor
    assert results[3]["error"].startswith("worker lost twice")
    assert all("error" not in results[i] for i in (0, 2, 4))


def test_workers_that_cannot_start_fail_every_episode_once(local_ray, tmp_path):
    results = []
    run_on_ray(partial(FlakyRunner, str(tmp_path), fail_start=True), range(4), 2,
               results.append, _failed)  # fmt: skip
    assert sorted(r["index"] for r in results) == [0, 1, 2, 3]
    assert all("worker could not start" in r["error"] and "no runner here" in r["error"]
               for r in results)  # fmt: skip
