"""Writes the golden checkpoint and the figures ``tests/test_golden.py`` holds refactors to.

Run once, at the commit the figures should pin, from a checkout of that commit:

    PYTHONPATH=. python tests/golden/make_golden.py tests/golden

It collects three scripted lift demos, cuts them with UVD on the state backbone, trains a tiny
goal=uvd BESO policy for 20 steps, and records (1) the actions the policy samples for fixed
observations and goals, and (2) a seeded evaluation of three episodes (the task demo cut and
relayed by the evaluator). The checkpoint is kept, so the test also loads a checkpoint written
by that commit's code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TINY = {
    "network": "mlp",
    "network_kwargs": {"hidden": 32, "blocks": 1},
    "d_state": 8,
    "horizon": 8,
    "n_action_steps": 4,
}
EVAL = dict(episodes=3, seed=100, workers=0, videos=0, max_steps=30, progress=False)
ACT_SEEDS = (0, 1, 2)


def fixed_inputs(folder) -> list[tuple[dict, dict]]:
    """Observations and goals taken from the demos themselves (frames 0, 10, 20 of episode 0,
    each with the episode's last frame as the goal)."""
    ep = folder.read_episode(0, frames=False)
    goal = {k: v[-1] for k, v in ep.state.items()}
    return [({k: v[t] for k, v in ep.state.items()}, goal) for t in (0, 10, 20)]


def sampled_actions(checkpoint, inputs) -> np.ndarray:
    """(seeds, inputs, action_dim): the first action of a fresh plan per seed and input."""
    from policies import Policy

    policy = Policy.from_pretrained(checkpoint)
    out = []
    for seed in ACT_SEEDS:
        row = []
        for obs, goal in inputs:
            policy.reset(seed=seed)
            row.append(np.asarray(policy.act(obs, goal), dtype=np.float64))
        out.append(row)
    return np.asarray(out)


def as_lists(values: dict) -> dict:
    return {k: np.asarray(v, dtype=np.float64).tolist() for k, v in values.items()}


def as_arrays(values: dict) -> dict:
    """The stored inputs back as the float32 rows a demo folder holds."""
    return {k: np.asarray(v, dtype=np.float32) for k, v in values.items()}


def episode_figures(per_episode: list[dict]) -> list[dict]:
    keys = ("seed", "success", "length", "stages", "final_eef_pos", "subgoal_switches")
    return [{k: r.get(k) for k in keys} | {"subgoals": r["demo"]["subgoals"]} for r in per_episode]


def main(out: Path) -> None:
    import torch

    from decomposer.pipeline import decompose_folder
    from demos import DemoFolder
    from policies.train import train
    from sim import Expert, env_spec, make_env, run_expert
    from sim.evaluate import evaluate

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "demos"
        folder = DemoFolder.create(root, env_spec("lift").dataset_info())
        with make_env("lift") as env:
            for s in range(3):
                folder.add_episode(run_expert(env, Expert("lift"), s).episode)
        decompose_folder(root, "state", plots=False, progress=False)
        run = train(root, Path(tmp) / "run", policy=TINY, goal="uvd", steps=20, batch_size=16,
                    lr=1e-3, warmup_steps=2, checkpoint_every=20, progress=False)  # fmt: skip
        ckpt = out / "checkpoint"
        if ckpt.exists():
            shutil.rmtree(ckpt)
        shutil.copytree(run.checkpoint, ckpt)
        inputs = fixed_inputs(folder)
        actions = sampled_actions(ckpt, inputs)
        res = evaluate(ckpt, "lift", out_dir=Path(tmp) / "eval", **EVAL)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    doc = {
        "commit": commit.strip(),
        "inputs": [[as_lists(obs), as_lists(goal)] for obs, goal in inputs],
        "actions": actions.tolist(),
        "episodes": episode_figures(res.info["per_episode"]),
    }
    (out / "expected.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}: {len(doc['episodes'])} episodes, actions {actions.shape}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
