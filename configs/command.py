"""The one way every ``uvdiff-*`` hydra command starts: configs/<name>.yaml, then an exit status.

Commands stay thin: ``run(cfg) -> int`` maps the config onto a library call; ``command_main``
turns it into a console entry point. It also answers ``--help`` from the config file itself
(its opening comment lines are the usage, each setting's comment explains it), so the help
and the defaults cannot drift apart, and it maps renamed settings onto their new names with a
warning, so old command lines keep working. Hydra's own help stays at ``--hydra-help``.

This module imports nothing from the project's packages: every floor may use it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

_SETTING = re.compile(r"^([A-Za-z_][\w]*):\s*(.*?)\s*(?:#\s?(.*))?$")


def config_text(name: str) -> str:
    """The text of the packaged configs/<name>.yaml."""
    return resources.files("configs").joinpath(f"{name}.yaml").read_text()


def command_help(name: str, command: str | None = None) -> str:
    """``--help`` for the command whose config is configs/<name>.yaml."""
    lines = config_text(name).splitlines()
    usage = []
    for line in lines:
        if not line.startswith("#"):
            break
        usage.append(line.lstrip("#").rstrip()[1:] if line.startswith("# ") else line[1:])
    out = [*usage, "", "Settings (key=value on the command line; default, then what it does):"]
    settings, groups = _settings(lines), _groups(lines)
    width = max((len(k) for k, _, _ in settings), default=10)
    for key, default, comment in settings:
        first, *more = comment or [""]
        out.append(f"  {key:<{width}}  {default:<12} {first}".rstrip())
        out += [f"  {'':<{width}}  {'':<12} {c}" for c in more]
    if groups:
        out += ["", "Config groups (group=option):"]
        for group, (default, options) in groups.items():
            out.append(f"  {group:<{width}}  {default:<12} options: {', '.join(options)}")
    out += ["", f"Hydra's own options: {command or 'the command'} --hydra-help"]
    return "\n".join(out) + "\n"


def _settings(lines: Sequence[str]) -> list[tuple[str, str, list[str]]]:
    """(key, default, comment lines) of each top-level setting, in file order; the comment
    goes on over the following lines that hold only an indented comment."""
    out: list[tuple[str, str, list[str]]] = []
    skip = ("defaults", "hydra")
    for line in lines:
        if line.startswith((" ", "\t")) and line.strip().startswith("#") and out:
            out[-1][2].append(line.strip().lstrip("#").strip())
            continue
        m = _SETTING.match(line)
        if m and m.group(1) not in skip:
            out.append((m.group(1), m.group(2) or "(see below)", [m.group(3) or ""]))
    return out


def _groups(lines: Sequence[str]) -> dict[str, tuple[str, list[str]]]:
    """Config groups named in the defaults list: group -> (default option, all options)."""
    out = {}
    for line in lines:
        m = re.match(r"^\s+-\s+([A-Za-z_]\w*):\s*([\w-]+)\s*$", line)
        if m and m.group(1) not in ("override",):
            group_dir = resources.files("configs").joinpath(m.group(1))
            options = sorted(
                Path(str(p)).stem for p in group_dir.iterdir() if p.name.endswith(".yaml")
            )
            out[m.group(1)] = (m.group(2), options)
    return out


def renamed_setting(cfg: Any, old: str, new: str, command: str) -> Any:
    """The value of setting ``new``, or of its old name ``old`` when that was given (with a
    warning on stderr that names the new one)."""
    value = cfg.get(old)
    if value is None:
        return cfg.get(new)
    print(f"{command}: warning: {old}= is renamed {new}=; using {new}={value}", file=sys.stderr)
    return value


def command_main(config_name: str, run: Callable[[Any], int]) -> None:
    """Run ``run(cfg)`` on the packaged config ``config_name`` and exit with what it returns.

    ``--help`` / ``-h`` prints the command's usage and settings from its config file."""
    import hydra

    command = Path(sys.argv[0]).name
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        sys.stdout.write(command_help(config_name, command))
        sys.exit(0)
    status = 0

    @hydra.main(config_path="pkg://configs", config_name=config_name, version_base="1.3")
    def app(cfg) -> None:
        nonlocal status
        status = run(cfg)

    app()
    sys.exit(status)
