"""A tiny state policy shaped for the simulated Panda (its actions are noise): for tests that
need a real checkpoint but not a good one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIM_STATE = {"eef_pos": 3, "eef_quat": 4, "gripper_qpos": 2, "object": 12}  # sim lift
_made: list[Path] = []  # one per test session: every caller gets the same (read-only) folder


def noise_checkpoint(root: Path) -> Path:
    """Train it under ``root`` the first time in this process; later calls reuse that one."""
    if _made and _made[0].is_dir():
        return _made[0]
    import torch

    from demos import DatasetInfo, DemoFolder, Episode
    from policies.train import train

    info = DatasetInfo(fps=20, action_dim=7, state=SIM_STATE, robot="panda", action_kind="delta_ee")
    folder = DemoFolder.create(root / "demo", info)
    rng = np.random.default_rng(0)
    for _ in range(2):
        folder.add_episode(
            Episode(
                action=rng.uniform(-1, 1, (20, 7)).astype(np.float32),
                state={
                    k: rng.normal(size=(20, d)).astype(np.float32) for k, d in SIM_STATE.items()
                },
            )
        )
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train(
            folder.root,
            root / "run",
            policy={
                "network": "mlp",
                "network_kwargs": {"hidden": 16, "blocks": 1},
                "d_state": 8,
                "horizon": 8,
                "n_action_steps": 4,
            },
            goal="none",
            steps=2,
            batch_size=4,
            warmup_steps=1,
            checkpoint_every=2,
            progress=False,
        )
    finally:
        torch.set_num_threads(n)
    _made[:] = [run.checkpoint]
    return run.checkpoint
