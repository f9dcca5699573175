"""One error type for the demo folder: every message names the file, the field and the value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a demo folder, located by a path relative to the folder."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class DemoFolderError(Exception):
    """A demo folder (or a file being converted into one) breaks an invariant.

    Raised where data enters; ``problems`` lists every fault found, not only the first.
    """

    def __init__(self, problems: list[Problem] | Problem | str, path: str = ""):
        if isinstance(problems, str):
            problems = [Problem(path, problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
