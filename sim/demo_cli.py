"""uvdiff-demo [quick=true] [task=stack] [...]: the main job (``make demo``), see configs/demo.yaml.

A thin hydra app over ``sim.pipeline.run_demo``: collect scripted demos, decompose them with UVD,
train one BESO policy per goal mode, evaluate them side by side, write report.html.
"""

from __future__ import annotations

import sys
from pathlib import Path


def run(cfg) -> int:
    """Run the demo as ``cfg`` says; the exit status."""
    from omegaconf import OmegaConf

    from decomposer.errors import DecomposerError
    from demos.errors import DemoFolderError

    from .errors import SimError
    from .pipeline import quick_settings, run_demo, settings_from

    c = OmegaConf.to_container(cfg, resolve=True)
    try:
        settings = settings_from(c)
    except (TypeError, ValueError) as e:
        print(f"uvdiff-demo: bad settings: {e}", file=sys.stderr)
        return 2
    if c.get("quick"):
        settings = quick_settings(settings)
    try:
        result = run_demo(settings, Path(c["out_dir"]), Path(c["cache_dir"]),
                          progress=bool(c.get("progress", True)))  # fmt: skip
    except (SimError, DecomposerError, DemoFolderError) as e:
        print(f"uvdiff-demo: {e}", file=sys.stderr)
        return 2
    rates = ", ".join(f"goal={g}: {r:.0f}%" for g, r in result.success.items())
    print(f"success on {settings.task} ({settings.eval_episodes} seeded episodes): {rates}")
    print(f"report: {result.report} ({result.wall_s / 60:.1f} min)")
    return 0


def main() -> None:
    from configs.command import command_main

    command_main("demo", run)


if __name__ == "__main__":
    main()
