"""``deploy``: load a policy, connect a robot, run the loop behind the shield, write the report.

Plain arguments (no hydra): ``uvdiff-deploy`` (``real.deploy_cli``) maps its config onto these,
and tests call them directly. ``make_robot`` builds the robot a ``robot/`` config names by
``_target_`` (``real.RosbridgeRobot``, ``sim.robot.SimRobot``, ...).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from decomposer.task import RelaySettings

from .config import ConfigError, RobotSpec
from .loop import LoopConfig, LoopReport, run_loop
from .shield import Shield

log = logging.getLogger("uvdiff.deploy")
DEFAULT_RELAY = RelaySettings()


MIDDLEWARES = {
    "rosbridge": "real.rosbridge.RosbridgeRobot",
    "dds": "real.dds.DdsRobot",
    "zenoh": "real.zenoh_link.ZenohRobot",
}


def make_robot(robot_cfg: Mapping[str, Any]):
    """Instantiate ``robot_cfg["driver"]``: its ``_target_``, or the driver of its
    ``middleware`` (``MIDDLEWARES``), with the rest as arguments."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = robot_cfg if OmegaConf.is_config(robot_cfg) else OmegaConf.create(dict(robot_cfg))
    driver = OmegaConf.to_container(cfg.driver, resolve=True)
    middleware = driver.pop("middleware", None)
    if middleware is not None:
        if middleware not in MIDDLEWARES:
            raise ValueError(
                f"robot.driver.middleware={middleware!r}: use one of {sorted(MIDDLEWARES)}"
            )
        driver.setdefault("_target_", MIDDLEWARES[middleware])
    return instantiate(driver, _convert_="all")


def deploy(
    checkpoint: str | os.PathLike,
    robot,
    spec: RobotSpec,
    loop: LoopConfig,
    *,
    policy_settings: Mapping[str, Any] | None = None,
    demo: str | os.PathLike | None = None,
    demo_episode: int = 0,
    relay: RelaySettings | None = DEFAULT_RELAY,
    out: str | os.PathLike | None = None,
    seed: int | None = 0,
) -> LoopReport:
    """Run ``checkpoint`` on ``robot`` (not yet connected); close it whatever happens.

    A goal-conditioned policy's task is episode ``demo_episode`` of the folder ``demo``
    (``task_goal``); ``relay`` None gives it the demo's last frame for the whole run."""
    from policies import Policy

    policy = Policy.from_pretrained(checkpoint, **dict(policy_settings or {}))
    if policy.config.action_dim != spec.action.dim:
        raise ValueError(
            f"{checkpoint}: the policy emits {policy.config.action_dim}-D actions, robot "
            f"{spec.name} takes {spec.action.dim}-D {spec.action.kind}"
        )
    goal = None
    if policy.needs_goal:
        if demo is None:
            raise ValueError(
                f"{checkpoint} is goal-conditioned: give demo=DEMO_DIR (the task), or "
                "policy={guidance: 0} for the goal-free policy"
            )
        goal = task_goal(checkpoint, policy.config, demo, demo_episode, relay)
    shield = Shield(spec.shield, spec.action, 1.0 / loop.rate_hz)
    robot.connect()
    try:
        obs = robot.observe()
        # one plan before the clock starts: the first inference pays for allocation
        policy.reset(seed)
        inputs = {**obs.state, **obs.frames}  # a camera goal's relay embeds the frames too
        policy.predict_chunk(inputs, None if goal is None else goal(inputs))
        if goal is not None:
            goal.reset()
        policy.reset(seed)
        report = run_loop(robot, policy, shield, loop, goal=goal)
        health = getattr(robot, "health", None)
        report.link = health() if callable(health) else {}
    finally:
        robot.close()
    if out is not None:
        write_report(report, out)
    return report


def task_goal(checkpoint, config, demo, episode, relay: RelaySettings | None, *,
              stats: Mapping[str, Any] | None = None):  # fmt: skip
    """The goal source of a deploy run (``decomposer.task``, as the evaluator's): the demo's
    subgoals walked by ``relay`` when its episode has a ``subgoals.json`` or the policy is
    goal=uvd (then cut here on the state scaled by ``stats``, by default the checkpoint's
    training statistics), else its last frame."""
    from decomposer.task import read_task_demo, task_goals
    from demos import DemoFolder, DemoFolderError
    from policies.checkpoint import load_stats, resolve
    from policies.embeddings import embedded_cameras, relay_embedder

    embedded = embedded_cameras(config)  # an embedding goal comes from its camera's frames
    raw = [k for k in config.resolved_goal_keys if k in config.cameras]
    if raw:
        raise ConfigError(
            f"goal keys {raw} are cameras encoded end to end: deploy takes state goals and "
            "camera goals on a backbone's embeddings (embeddings=[camera] backbone=NAME)"
        )
    keys = [embedded.get(k, k) for k in config.resolved_goal_keys]
    try:
        task = read_task_demo(DemoFolder(demo), episode, keys)
    except (DemoFolderError, ValueError) as e:
        raise ConfigError(f"demo={demo}: {e}") from None
    if relay is not None and task.subgoals is None and config.goal != "uvd":
        relay = None  # no subgoals to walk: a final-goal policy gets the last frame
    embed = None
    if relay is not None:
        relay = relay.for_policy(getattr(config, "subgoal_cut", None))  # cut as in training
        ckpt = None if checkpoint is None else resolve(checkpoint)
        if stats is None:
            stats = load_stats(ckpt, [k for k in keys if k in config.state])
        try:  # the evaluator's relay embedding: the goal's backbone, or its scaled state
            embed = relay_embedder(ckpt, config, stats)[0]
        except ValueError as e:
            raise ConfigError(str(e)) from None
    return task_goals(task.rows, relay=relay, embed=embed, fps=task.fps, subgoals=task.subgoals)


def write_report(report: LoopReport, out: str | os.PathLike) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "deploy_report.json"
    tmp = out / ".deploy_report.json.tmp"
    tmp.write_text(json.dumps(report.to_json(), indent=2, default=_plain) + "\n")
    tmp.replace(path)
    np.save(out / "actions.npy", report.actions)
    return path


def _plain(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
