"""The demo report's films: a rollout beside the task demo that specified it, and the subgoal
frame the policy was conditioned on at each step.

Evaluation films only the rollout; the task demo of a seed is the scripted expert's episode on
the same seed and order, so it is replayed here (the same for every policy of the demo). The
active subgoal at step t follows the relay's recorded switches (``subgoal_switches`` in
eval_info.json): the policy saw demo frame ``subgoals[k]`` where k counts the switches so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

LABEL_H = 14  # pixels of caption above each panel


def task_demo_frames(
    task: str, seed: int, order: Sequence[str] | None, camera: str, size: tuple[int, int]
) -> np.ndarray:
    """The scripted expert's episode for ``seed`` (and ``order``), filmed by ``camera``."""
    from .envs import make_env
    from .experts import Expert
    from .rollout import run_expert

    with make_env(task, cameras=(camera,), image_size=size) as env:
        options = {"order": list(order)} if order else None
        run = run_expert(env, Expert(task), seed, options=options, record=True)
    return run.episode.frames[camera]  # row t: the observation before action t, as evaluated


def goal_frame_indices(
    steps: int, demo_length: int, subgoals: Sequence[int] | None, switches: Sequence[int]
) -> np.ndarray:
    """For each rollout step, the demo frame the policy was conditioned on: the final frame
    for a final-goal policy (``subgoals`` None), else ``subgoals[k]`` after k relay switches."""
    if not subgoals:
        return np.full(steps, demo_length - 1)
    k = np.searchsorted(np.asarray(switches), np.arange(steps), side="right")
    return np.asarray(subgoals)[np.minimum(k, len(subgoals) - 1)]


def _panel(frame: np.ndarray, text: str, colour=(255, 255, 255)) -> np.ndarray:
    import cv2

    w = frame.shape[1]
    bar = np.zeros((LABEL_H, w, 3), np.uint8)
    cv2.putText(bar, text, (2, LABEL_H - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, colour, 1,
                cv2.LINE_AA)  # fmt: skip
    return np.concatenate([bar, frame])


def compose_film(
    demo: np.ndarray,
    rollout: np.ndarray,
    subgoals: Sequence[int] | None,
    switches: Sequence[int],
    goal: str,
) -> np.ndarray:
    """Frames (T, H + LABEL_H, 3W, 3): task demo | rollout | the goal frame the policy saw."""
    T = len(rollout)
    at = goal_frame_indices(T, len(demo), subgoals, switches)
    out = []
    for t in range(T):
        d = demo[min(t, len(demo) - 1)]
        if subgoals:
            k = int(np.searchsorted(subgoals, at[t])) + 1
            what = f"subgoal {k}/{len(subgoals)} (frame {at[t]})"
        else:
            what = "final frame"
        out.append(np.concatenate([
            _panel(d, "task demo"),
            _panel(rollout[t], f"goal={goal}  step {t}"),
            _panel(demo[at[t]], what, (255, 230, 120)),
        ], axis=1))  # fmt: skip
    return np.stack(out)


def write_h264(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """An H.264 mp4 that browsers play (PyAV); odd sizes are padded to even."""
    import av

    frames = np.asarray(frames)
    h, w = frames.shape[1:3]
    pad = ((0, 0), (0, h % 2), (0, w % 2), (0, 0))
    frames = np.pad(frames, pad)
    path = Path(path)
    tmp = path.with_name(path.name + ".part.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=round(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "26", "preset": "veryfast"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)
    return path


def film_strip(film: np.ndarray, n: int = 6) -> np.ndarray:
    """``n`` frames of a composed film, evenly spaced, stacked top to bottom."""
    picks = np.linspace(0, len(film) - 1, n).round().astype(int)
    return np.concatenate([film[i] for i in picks], axis=0)
