"""uvdiff-eval of a policy on frozen backbone embeddings: the env renders the backbone's camera,
the policy embeds the raw frames itself, and the goal frame comes from the task demo."""

import numpy as np
import pytest

from demos import DemoFolder
from policies.train import train
from sim import Expert, env_spec, make_env, run_expert
from sim.evaluate import evaluate

CAM, SIZE = "agentview", (32, 32)
TINY = {"network": "mlp", "network_kwargs": {"hidden": 32, "blocks": 1}, "d_state": 8,
        "d_embedding": 8, "horizon": 4, "n_action_steps": 2}  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("emb")
    folder = DemoFolder.create(
        root / "lift", env_spec("lift", cameras=(CAM,), image_size=SIZE).dataset_info()
    )
    with make_env("lift", cameras=(CAM,), image_size=SIZE) as env:
        for seed in range(2):
            folder.add_episode(run_expert(env, Expert("lift"), seed).episode)
    run = train(
        folder.root, root / "run", policy=TINY, goal="final", state_keys=["eef_pos"],
        embeddings=[CAM], backbone="pixels", steps=4, batch_size=16, warmup_steps=1,
        checkpoint_every=4, progress=False,
    )  # fmt: skip
    return run.checkpoint


def test_the_policy_sees_its_backbone_camera_and_a_goal_frame(checkpoint, tmp_path):
    kw = dict(workers=0, videos=0, max_steps=6, progress=False)
    first = evaluate(checkpoint, "lift", 2, seed=3, out_dir=tmp_path / "a", **kw)
    assert [e["error"] for e in first.episodes] == [None, None]
    assert [e["length"] for e in first.episodes] == [6, 6]
    assert first.info["goal"] == "final"
    from policies.checkpoint import load_config

    cfg, _ = load_config(checkpoint)
    assert cfg.embeddings and not cfg.cameras  # the policy reads the camera only as embeddings
    # seeded: the same episodes again; different seeds, different episodes
    again = evaluate(checkpoint, "lift", 2, seed=3, out_dir=tmp_path / "b", **kw)
    assert [e["final_eef_pos"] for e in again.episodes] == [
        e["final_eef_pos"] for e in first.episodes
    ]
    assert not np.allclose(first.episodes[0]["final_eef_pos"], first.episodes[1]["final_eef_pos"])
