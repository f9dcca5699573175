"""Another stack's policy in its own process, scored by uvdiff-eval: the peer protocol against a
real subprocess (a uvdiff checkpoint served through it), bad features, and a peer that dies."""

import sys
from pathlib import Path

import pytest
import yaml

from sim.errors import SimError
from sim.evaluate import evaluate
from sim.testing import expert_folder, mlp_policy, train_checkpoint

PEER = Path(__file__).parent / "peers" / "uvdiff_peer.py"
FAST = dict(videos=0, max_steps=25, progress=False)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("peer")
    folder = expert_folder(root / "lift", "lift", range(2))
    return train_checkpoint(folder.root, root / "run", "none", policy=mlp_policy(32, d_state=8),
                            steps=4, batch_size=16)  # fmt: skip


def spec(tmp_path, ckpt, *args) -> Path:
    path = tmp_path / "peer.yaml"
    command = [sys.executable, str(PEER), str(ckpt), *args]
    path.write_text(yaml.safe_dump({"command": command, "name": "served uvdiff"}))
    return path


def test_a_peer_scores_exactly_as_the_policy_it_serves(ckpt, tmp_path):
    direct = evaluate(ckpt, "lift", 3, seed=7, out_dir=tmp_path / "direct", workers=0, **FAST)
    peer = evaluate(spec(tmp_path, ckpt), "lift", 3, seed=7, out_dir=tmp_path / "peer",
                    workers=2, **FAST)  # fmt: skip
    assert peer.info["sampler"] == "peer" and peer.info["n_errors"] == 0
    for a, b in zip(direct.episodes, peer.episodes, strict=True):
        for key in ("seed", "success", "length", "stages", "final_eef_pos"):
            assert a[key] == b[key], key


def test_the_harness_times_each_executed_action_of_a_peer_as_of_its_own_policies(ckpt, tmp_path):
    slow = evaluate(spec(tmp_path, ckpt, "--sleep-ms", "20"), "lift", 1, seed=0,
                    out_dir=tmp_path / "slow", workers=0, **FAST)  # fmt: skip
    direct = evaluate(ckpt, "lift", 1, seed=0, out_dir=tmp_path / "direct", workers=0, **FAST)
    assert 20 <= slow.info["act_ms"] < 1000 and slow.episodes[0]["act_ms"] >= 20
    assert 0 < direct.info["act_ms"] < slow.info["act_ms"] - 15
    assert "ms per executed action" in (tmp_path / "slow" / "report.md").read_text()


def test_a_peer_reading_a_key_the_env_lacks_is_refused_before_any_episode(ckpt, tmp_path):
    with pytest.raises(SimError, match="object_pose_secret"):
        evaluate(spec(tmp_path, ckpt, "--extra-input", "object_pose_secret"), "lift", 2,
                 out_dir=tmp_path / "bad", workers=0, **FAST)  # fmt: skip
    assert not (tmp_path / "bad" / "eval_info.json").exists()


def test_a_peer_dying_fails_its_episode_and_the_rest_go_on(ckpt, tmp_path):
    res = evaluate(spec(tmp_path, ckpt, "--die-at", "30"), "lift", 3, seed=0,
                   out_dir=tmp_path / "dies", workers=0, **FAST)  # fmt: skip
    errors = [e for e in res.episodes if e["error"]]
    assert len(errors) == 1 and errors[0]["index"] == 1  # 25 steps an episode: call 30 is in #1
    assert "exited (status 3)" in errors[0]["error"] and "simulated crash" in errors[0]["error"]
    assert res.info["n_errors"] == 1 and all(e["length"] == 25 for e in res.episodes[::2])


def test_inference_overrides_for_a_peer_are_refused(ckpt, tmp_path):
    with pytest.raises(SimError, match="the peer's own"):
        evaluate(spec(tmp_path, ckpt), "lift", 1, out_dir=tmp_path / "o", workers=0,
                 inference={"rtc": True}, **FAST)  # fmt: skip


@pytest.fixture(scope="module")
def embedding_ckpt(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("peer_emb")
    folder = expert_folder(root / "lift", "lift", range(2), cameras=("agentview",),
                           image_size=(32, 32))  # fmt: skip
    policy = mlp_policy(32, d_state=8, d_embedding=8, horizon=4, n_action_steps=2)
    return train_checkpoint(folder.root, root / "run", "none", policy=policy,
                            state_keys=["eef_pos"], embeddings=["agentview"], backbone="pixels",
                            steps=4, batch_size=16)  # fmt: skip


def test_embed_export_puts_the_runs_embeddings_where_lerobots_policies_read_them(
    embedding_ckpt, tmp_path
):
    import importlib.util
    import json

    import numpy as np
    import pyarrow.parquet as pq

    from demos import DemoFolder
    from demos.convert.cli import main as convert_main

    path = Path(__file__).parents[1] / "benchmarks" / "peers" / "embed_export.py"
    module = importlib.util.spec_from_file_location("embed_export", path)
    embed_export = importlib.util.module_from_spec(module)
    module.loader.exec_module(embed_export)
    demos = embedding_ckpt.parents[2] / "lift"
    out = embed_export.export(demos, embedding_ckpt, tmp_path / "emb", progress=False)
    folder = DemoFolder(out)
    assert not folder.info.cameras and "object" not in folder.info.state
    first = folder.episode_ids[0]
    cached = sorted((demos / "cache" / "embeddings").glob(f"pixels-*/agentview/{first}.npy"))
    np.testing.assert_array_equal(folder.read_lowdim(first)["agentview_emb"], np.load(cached[0]))
    assert convert_main([str(out), str(tmp_path / "lr"), "--from", "to-lerobot", "--layout",
                         "policy", "--no-progress"]) == 0  # fmt: skip
    info = json.loads((tmp_path / "lr" / "meta" / "info.json").read_text())
    env = info["features"]["observation.environment_state"]
    assert env["names"][0] == "agentview_emb_0" and env["shape"] == [np.load(cached[0]).shape[1]]
    assert info["features"]["observation.state"]["names"] == ["eef_pos_0", "eef_pos_1", "eef_pos_2"]
    rows = pq.read_table(next((tmp_path / "lr" / "data").rglob("*.parquet")))
    got = np.asarray(rows.column("observation.environment_state").to_pylist()[:3], np.float32)
    np.testing.assert_allclose(got, np.load(cached[0])[:3], rtol=1e-6)


def test_embed_with_gives_a_peer_the_same_frozen_embeddings_as_our_policy(embedding_ckpt, tmp_path):
    """Matched features: the peer asks for agentview_emb as state; the harness renders the
    camera and embeds it with the checkpoint's backbone, so the served policy acts as directly."""
    path = spec(tmp_path, embedding_ckpt, "--embeddings-as-state")
    doc = yaml.safe_load(path.read_text())
    no_embedding = tmp_path / "plain.yaml"
    no_embedding.write_text(yaml.safe_dump(doc))
    with pytest.raises(SimError, match="agentview_emb"):  # without embed_with: refused, named
        evaluate(no_embedding, "lift", 1, out_dir=tmp_path / "refused", workers=0, **FAST)
    path.write_text(yaml.safe_dump({**doc, "embed_with": str(embedding_ckpt)}))
    direct = evaluate(embedding_ckpt, "lift", 2, seed=5, out_dir=tmp_path / "direct", workers=0,
                      **FAST)  # fmt: skip
    peer = evaluate(path, "lift", 2, seed=5, out_dir=tmp_path / "peer", workers=0, **FAST)
    assert peer.info["n_errors"] == 0
    for a, b in zip(direct.episodes, peer.episodes, strict=True):
        for key in ("seed", "success", "length", "final_eef_pos"):
            assert a[key] == b[key], key
    path.write_text(yaml.safe_dump({**doc, "embed_with": str(tmp_path / "nowhere")}))
    with pytest.raises(SimError, match="embed_with"):
        evaluate(path, "lift", 1, out_dir=tmp_path / "bad", workers=0, **FAST)
