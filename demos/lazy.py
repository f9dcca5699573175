"""Lazy package exports (PEP 562), for the packages above this one: a package names what it
exports and where each name lives, and a name is imported on first use. Importing a light
module of a package (the deploy loop's chunk schedule, the simulator's task goals) then does
not pay for torch or scipy in every worker process and command."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str]) -> tuple[Callable, Callable]:
    """(``__getattr__``, ``__dir__``) for ``package``: ``homes`` maps each exported name to
    its submodule (relative, without the dot)."""
    namespace = import_module(package).__dict__

    def getattr_(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{homes[name]}", package), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted([*namespace, *homes])

    return getattr_, dir_
