"""uvdiff-deploy checkpoint=PATH robot=NAME [env=lift] [--dry-run] [key=value ...]

A thin hydra app (configs/deploy.yaml, configs/robot/NAME.yaml) over ``real.deploy.deploy``:
prints the cadence and safety report and exits with the loop's status (0 finished, 2 e-stop,
3 robot lost, 4 inference failed, 5 robot error). Bad config ends in one line and exit 2.
"""

from __future__ import annotations

import logging
import sys


def run(cfg) -> int:
    """Deploy as ``cfg`` says; the exit status."""
    import torch

    from .config import ConfigError, RobotSpec
    from .deploy import deploy, make_robot
    from .loop import LoopConfig
    from .robot import RobotError

    torch.set_num_threads(int(cfg.threads))
    try:
        spec = RobotSpec.from_config(cfg.robot)
        rate = float(cfg.rate_hz or spec.rate_hz)
        loop = LoopConfig(
            rate_hz=rate,
            max_steps=int(cfg.max_steps),
            dry_run=bool(cfg.dry_run),
            stop_on_success=bool(cfg.stop_on_success),
            lost_after=float(cfg.lost_after),
        )
        robot = make_robot(cfg.robot)
        report = deploy(
            cfg.checkpoint,
            robot,
            spec,
            loop,
            policy_settings=policy_settings(cfg),
            demo=cfg.demo,
            demo_episode=int(cfg.demo_episode),
            relay=deploy_relay(cfg, fps=rate),  # demos are recorded at the control rate
            out=cfg.out,
            seed=int(cfg.seed),
        )
    except (ConfigError, RobotError, ValueError, FileNotFoundError) as e:
        print(f"uvdiff-deploy: {e}", file=sys.stderr)
        return 2
    print(report.summary())
    return report.exit_code


def policy_settings(cfg) -> dict:
    """Inference overrides for the policy: ``policy={...}`` plus the top-level shortcuts
    ``n_action_steps``, ``temporal_ensemble`` and ``rtc`` (the chunk schedule of the loop)."""
    from omegaconf import OmegaConf

    settings = OmegaConf.to_container(cfg.policy, resolve=True)
    for key in ("n_action_steps", "temporal_ensemble", "rtc"):
        if cfg.get(key) is not None:
            settings[key] = cfg[key]
    return settings


def deploy_relay(cfg, *, fps: float):
    """The relay settings, or None (``relay=none``: the demo's last frame). ``relay`` was a
    boolean before it named a rule: true still means the default rule, false none (warned)."""
    import warnings

    from decomposer.task import RELAY_CONFIG_KEYS, relay_settings

    rule = cfg.relay
    if isinstance(rule, bool):
        new = "relative" if rule else "none"
        warnings.warn(f"relay={str(rule).lower()} is now relay={new} (a rule name or none)",
                      FutureWarning, stacklevel=2)  # fmt: skip
        rule = new
    if rule is None or str(rule) == "none":
        return None
    values = {k: cfg.get(k) for k in RELAY_CONFIG_KEYS}
    return relay_settings({**values, "relay": rule}, fps=fps)


def main() -> None:
    from configs.command import command_main

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # --dry-run as a flag, next to hydra's key=value overrides
    sys.argv = [("dry_run=true" if a == "--dry-run" else a) for a in sys.argv]
    command_main("deploy", run)


if __name__ == "__main__":
    main()
