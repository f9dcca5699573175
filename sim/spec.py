"""What an env observes and takes, in the terms a demo folder's dataset.json uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from demos import DatasetInfo

# Proprioception every env returns, in this order (float32).
PROPRIO = {"eef_pos": 3, "eef_quat": 4, "gripper_qpos": 2}
# The version of the observation layout (``envs``): part of uvdiff-demo's cache keys, so that
# demos recorded under an older layout are collected again rather than mixed with new ones.
# 2: object orientations as rotation-matrix columns, and observation 0 after its sensors ran.
OBS_LAYOUT = 2


#: Every simulated task runs its controller at 20 Hz (robosuite's control_freq).
CONTROL_FPS = 20.0
#: Actions are the arm's six pose deltas, then the gripper's open/close (a step by design).
ARM_ACTIONS = slice(0, 6)


@dataclass(frozen=True)
class ObsSpec:
    """Observation keys and dims: state vectors (float32) and cameras (uint8 (H, W, 3)).

    An observation dict holds every key of ``state`` and every camera name of ``cameras``.
    """

    state: dict[str, int]
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)
    action_dim: int = 7
    fps: float = CONTROL_FPS
    robot: str = "panda"
    action_kind: str = "delta_ee"

    @property
    def keys(self) -> list[str]:
        return [*self.state, *self.cameras]

    def dataset_info(self, tasks: Sequence[str] = ()) -> DatasetInfo:
        """The dataset.json of a demo folder recorded from this env."""
        return DatasetInfo(
            fps=self.fps,
            action_dim=self.action_dim,
            state=dict(self.state),
            cameras=dict(self.cameras),
            robot=self.robot,
            action_name="osc_pose_delta",
            action_kind=self.action_kind,
            tasks=list(tasks),
        )
