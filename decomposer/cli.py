"""uvdiff-decompose data=DIR backbone=NAME [method=uvd] [min_interval_s=S] [gamma=G] [weights=PATH]

A thin hydra app over ``decomposer.pipeline.decompose_folder`` (config: configs/decompose.yaml).
Prints the summary table; bad input ends in one line naming the file or field, and exit 2.
"""

from __future__ import annotations

import sys
from typing import Any


def run(cfg: Any) -> int:
    """Decompose as ``cfg`` says; the exit status."""
    from omegaconf import OmegaConf

    from demos.errors import DemoFolderError

    from .errors import DecomposerError
    from .pipeline import decompose_folder

    c = OmegaConf.to_container(cfg, resolve=True)
    c.pop("hydra", None)
    data = c.pop("data")
    try:
        summary = decompose_folder(data, **c)
    except (DecomposerError, DemoFolderError) as e:
        lines = str(e).splitlines() or [type(e).__name__]
        more = f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else ""
        print(f"uvdiff-decompose: {lines[0]}{more}", file=sys.stderr)
        return 2
    print(summary.table())
    print(
        f"wrote subgoals.json for {len(summary.episodes)} episodes; summary: "
        f"{data}/decomposition_summary.md"
    )
    return 0


def main() -> None:
    from configs.command import command_main

    command_main("decompose", run)


if __name__ == "__main__":
    main()
