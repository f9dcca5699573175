"""uvdiff-eval of a policy on frozen backbone embeddings: the env renders the backbone's camera,
the policy embeds the raw frames itself, and the goal frame comes from the task demo."""

import numpy as np
import pytest

from sim.evaluate import evaluate
from sim.testing import expert_folder, mlp_policy, train_checkpoint

CAM, SIZE = "agentview", (32, 32)
TINY = mlp_policy(32, d_state=8, d_embedding=8, horizon=4, n_action_steps=2)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("emb")
    folder = expert_folder(root / "lift", "lift", range(2), cameras=(CAM,), image_size=SIZE)
    return train_checkpoint(
        folder.root, root / "run", "final", policy=TINY, state_keys=["eef_pos"],
        embeddings=[CAM], backbone="pixels", steps=4, batch_size=16,
    )  # fmt: skip


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
