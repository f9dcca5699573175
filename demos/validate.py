"""Check every invariant of a demo folder and report all faults at once (``uvdiff-check``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .episode import LOWDIM, check_lowdim, load_lowdim
from .errors import DemoFolderError, Problem
from .folder import EPISODES, DemoFolder
from .video import iter_frames


@dataclass
class Report:
    """What ``validate`` found: the problems, and a summary of what is fine."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    episodes: int = 0
    frames: int = 0
    duration_s: float = 0.0
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        cams = ", ".join(f"{c} {h}x{w}" for c, (h, w) in self.cameras.items()) or "none"
        return (
            f"{self.root}: OK, {self.episodes} episodes, {self.frames} frames, "
            f"{self.duration_s:.1f} s, cameras: {cams}"
        )

    def raise_if_bad(self) -> None:
        if self.problems:
            raise DemoFolderError(self.problems)


def validate(root: str | os.PathLike, *, decode_videos: bool = True) -> Report:
    """Check dataset.json, every episode's arrays and, by decoding them, every video."""
    report = Report(Path(root))
    try:
        folder = DemoFolder(root)
    except DemoFolderError as e:
        report.problems.extend(e.problems)
        return report
    info = folder.info
    report.cameras = dict(info.cameras)
    ids = folder.episode_ids
    if not ids:
        report.problems.append(Problem(f"{EPISODES}/", "holds no episode"))
    for ep in ids:
        rel = folder.rel(ep, LOWDIM)
        try:
            arrays = load_lowdim(folder.episode_dir(ep) / LOWDIM, rel)
        except DemoFolderError as e:
            report.problems.extend(e.problems)
            arrays = None
        T = None
        if arrays is not None:
            problems = check_lowdim(info, arrays, rel)
            report.problems.extend(problems)
            if "action" in arrays and arrays["action"].ndim == 2:
                T = arrays["action"].shape[0]
            if not problems:
                report.frames += T
                ts = arrays["timestamp"]
                report.duration_s += float(ts[-1] - ts[0]) + 1.0 / info.fps
        for cam, hw in info.cameras.items():
            if decode_videos:
                report.problems.extend(_check_video(folder, ep, cam, hw, T))
            elif not folder.video_path(ep, cam).is_file():
                report.problems.append(Problem(folder.rel(ep, f"{cam}.mp4"), "missing"))
    report.episodes = len(ids)
    return report


def _check_video(folder: DemoFolder, ep: str, cam: str, hw: tuple[int, int], T: int | None):
    rel = folder.rel(ep, f"{cam}.mp4")
    n = 0
    try:
        for frame in iter_frames(folder.video_path(ep, cam)):
            if n == 0 and frame.shape[:2] != tuple(hw):
                return [
                    Problem(
                        rel,
                        f"frames are {frame.shape[0]}x{frame.shape[1]}, "
                        f"dataset.json cameras.{cam} says {hw[0]}x{hw[1]}",
                    )
                ]
            n += 1
    except DemoFolderError as e:
        return [Problem(rel, p.message) for p in e.problems]
    if n == 0:
        return [Problem(rel, "holds no decodable frame (truncated or not a video)")]
    if T is not None and n != T:
        return [Problem(rel, f"has {n} frames, {LOWDIM} has {T} actions")]
    return []
