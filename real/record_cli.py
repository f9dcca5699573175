"""uvdiff-record robot=NAME out=DIR [episodes=N] [max_steps=T] [task=...] [key=value ...]

A thin hydra app (configs/record.yaml) over ``real.record.record``: listens to the robot named
by ``robot=`` (its state and cameras) and to the operator's command topic, writes each episode
atomically into the demo folder, and exits 0, or 3 when the robot went silent (what was
recorded up to then is saved). Bad config ends in one line and exit 2.
"""

from __future__ import annotations

import logging
import sys


def run(cfg) -> int:
    from omegaconf import OmegaConf

    from demos.errors import DemoFolderError

    from .config import ConfigError, RobotSpec
    from .deploy import make_robot
    from .record import record
    from .robot import RobotError

    try:
        spec = RobotSpec.from_config(cfg.robot)
        robot_cfg = OmegaConf.to_container(cfg.robot, resolve=True)
        driver = robot_cfg["driver"]
        # listen only: the operator's device commands the arm, the recorder never does
        driver["command"] = None
        driver["info"] = [
            *[i for i in driver.get("info") or [] if i.get("key") not in ("action", "recording")],
            {"key": "action", **OmegaConf.to_container(cfg.action, resolve=True)},
        ]
        if cfg.episode_topic is not None:
            topic = OmegaConf.to_container(cfg.episode_topic, resolve=True)
            driver["info"].append({"key": "recording", **topic})
        robot = make_robot(robot_cfg)
        result = record(
            robot,
            cfg.out,
            rate_hz=float(cfg.rate_hz or spec.rate_hz),
            action_dim=spec.action.dim,
            action_kind=spec.action.kind,
            robot_name=spec.name,
            episodes=int(cfg.episodes),
            max_steps=int(cfg.max_steps),
            task=cfg.task,
            lost_after=float(cfg.lost_after),
            wait_for_action=float(cfg.wait_for_action),
        )
    except (ConfigError, RobotError, DemoFolderError, ValueError) as e:
        print(f"uvdiff-record: {e}", file=sys.stderr)
        return 2
    print(result.summary())
    return result.exit_code


def main() -> None:
    from configs.command import command_main

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    command_main("record", run)


if __name__ == "__main__":
    main()
