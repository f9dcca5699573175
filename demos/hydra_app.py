"""The one way every ``uvdiff-*`` hydra command starts: configs/<name>.yaml, then an exit status.

Commands stay thin: ``run(cfg) -> int`` maps the config onto a library call; this turns it
into a console entry point.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def hydra_main(config_name: str, run: Callable[[Any], int]) -> None:
    """Run ``run(cfg)`` on the packaged config ``config_name`` and exit with what it returns."""
    import hydra

    status = 0

    @hydra.main(config_path="pkg://configs", config_name=config_name, version_base="1.3")
    def app(cfg) -> None:
        nonlocal status
        status = run(cfg)

    app()
    sys.exit(status)
