"""uvdiff-collect env=NAME episodes=N out=DIR seed=S [workers=2] [orders=...] [cameras=[...]]

A thin hydra app over ``sim.collect.collect``: prints the expert's success rate and writes
it, with the config, to ``DIR/collect_stats.json``. Bad input ends in one line and exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def run(cfg) -> int:
    """Collect as ``cfg`` (configs/collect.yaml) says; the exit status."""
    from omegaconf import OmegaConf

    from .collect import collect
    from .errors import SimError

    orders = cfg.orders
    if orders is not None and not isinstance(orders, str):
        orders = OmegaConf.to_container(orders)
    try:
        stats = collect(
            cfg.env,
            int(cfg.episodes),
            cfg.out,
            int(cfg.seed),
            workers=int(cfg.workers),
            cameras=tuple(cfg.cameras),
            image_size=tuple(cfg.image_size),
            orders=orders,
            fast_render=bool(cfg.fast_render),
            perturb=float(cfg.perturb),
            progress=bool(cfg.progress),
            backend=str(cfg.backend),
            address=cfg.address,
        )
    except SimError as e:
        print(f"uvdiff-collect: {e}", file=sys.stderr)
        return 2
    report = {**stats.to_json(), "config": OmegaConf.to_container(cfg, resolve=True)}
    Path(cfg.out, "collect_stats.json").write_text(json.dumps(report, indent=2) + "\n")
    print(stats.summary())
    for seed, why in sorted(stats.failed.items()):
        print(f"  seed {seed}: {why.splitlines()[0]}")
    return 0


def main() -> None:
    from configs.command import command_main

    command_main("collect", run)


if __name__ == "__main__":
    main()
