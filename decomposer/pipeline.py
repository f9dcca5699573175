"""Decompose every episode of a demo folder: the library behind ``uvdiff-decompose``.

Per episode it writes ``episodes/NNNNNN/subgoals.json`` (what ``policies.goals`` reads) and
``decomposition.png``; for the folder ``decomposition_summary.json`` and ``.md`` (subgoal
counts and, when lowdim.npz holds ``stage``, boundary precision / recall within
``tolerance_s`` and the mean offset; a true stage end within ``tolerance_s`` of the last frame
counts as met by the final subgoal, see ``boundary_scores(final_within_s=...)``).
Parameters are plain typed arguments; nothing here reads hydra or ``sys.argv``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from demos.atomic import atomic_write_bytes, atomic_write_json, json_safe
from demos.episode import LOWDIM
from demos.errors import DemoFolderError
from demos.folder import DemoFolder
from demos.subgoals import Subgoals, write_subgoals

from .baselines import get_method
from .defaults import DEFAULT_GAMMA, DEFAULT_MIN_INTERVAL_S
from .embed_cache import episode_embeddings
from .encoder import Encoder
from .errors import DecomposerError
from .fitting import default_camera, fit_backbone
from .registry import get_spec
from .relabel import boundary_scores, stage_boundaries
from .uvd import decompose, decompose_curves
from .weights import load_backbone as _load

PLOT = "decomposition.png"
SUMMARY = "decomposition_summary"
EMBEDDING_METHODS = ("uvd", "changepoint")


@dataclass
class EpisodeResult:
    episode: str
    frames: int
    subgoals: list[int]
    scores: dict[str, float | int] | None = None


@dataclass
class Summary:
    data: str
    backbone: str | None
    weights_hash: str | None
    method: str
    parameters: dict[str, Any]
    episodes: list[EpisodeResult] = field(default_factory=list)

    @property
    def pooled(self) -> dict[str, float] | None:
        """Precision / recall over all boundaries of all episodes; mean offset over matches."""
        scored = [e.scores for e in self.episodes if e.scores is not None]
        if not scored:
            return None
        n_pred = sum(s["n_pred"] for s in scored)
        n_true = sum(s["n_true"] for s in scored)
        n_match = sum(s["n_matched"] for s in scored)
        offs = [
            (s["mean_offset_s"] * s["n_matched"], s["mean_abs_offset_s"] * s["n_matched"])
            for s in scored
            if s["n_matched"]
        ]
        return {
            "precision": n_match / n_pred if n_pred else 1.0,
            "recall": n_match / n_true if n_true else 1.0,
            "mean_offset_s": sum(o[0] for o in offs) / n_match if n_match else math.nan,
            "mean_abs_offset_s": sum(o[1] for o in offs) / n_match if n_match else math.nan,
            "n_pred": n_pred,
            "n_true": n_true,
            "n_matched": n_match,
        }

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["pooled"] = self.pooled
        return json_safe(d)

    def table(self) -> str:
        """Markdown: one row per episode, then the pooled row."""
        scored = any(e.scores is not None for e in self.episodes)
        head = "| episode | frames | subgoals |"
        rule = "|---|---:|---:|"
        if scored:
            head += " true ends | precision | recall | mean offset (s) |"
            rule += "---:|---:|---:|---:|"
        lines = [head, rule]
        for e in self.episodes:
            row = f"| {e.episode} | {e.frames} | {len(e.subgoals)} |"
            if scored:
                row += _score_cells(e.scores)
            lines.append(row)
        if scored:
            n = sum(len(e.subgoals) for e in self.episodes)
            lines.append(f"| all | {sum(e.frames for e in self.episodes)} | {n} |")
            lines[-1] += _score_cells(self.pooled)
        return "\n".join(lines)


def _score_cells(s: dict | None) -> str:
    if s is None:
        return " - | - | - | - |"
    off = s["mean_offset_s"]
    off = "-" if off is None or (isinstance(off, float) and math.isnan(off)) else f"{off:+.2f}"
    return f" {s['n_true']} | {s['precision']:.2f} | {s['recall']:.2f} | {off} |"


def frames_from_seconds(fps: float, min_interval: int | None, min_interval_s: float | None) -> int:
    """The min interval in frames: from seconds (rounded at the folder's fps), else as given;
    neither: ``DEFAULT_MIN_INTERVAL_S`` (0.9 s) at the folder's fps."""
    if min_interval is not None and min_interval_s is not None:
        raise DecomposerError("give min_interval (frames) or min_interval_s (seconds), not both")
    if min_interval_s is not None:
        if not (isinstance(min_interval_s, int | float) and min_interval_s >= 0):
            raise DecomposerError(f"min_interval_s must be a number >= 0, got {min_interval_s!r}")
        return round(float(min_interval_s) * fps)
    if min_interval is None:  # UVD's 18 frames, as the time they take at 20 fps
        return round(DEFAULT_MIN_INTERVAL_S * fps)
    if isinstance(min_interval, bool) or not isinstance(min_interval, int) or min_interval < 0:
        raise DecomposerError(f"min_interval must be an int >= 0 (frames), got {min_interval!r}")
    return min_interval


def prepare_encoder(
    folder: DemoFolder,
    backbone: str,
    *,
    weights: str | os.PathLike | None = None,
    camera: str | None = None,
    device: str | None = None,
    fit_args: dict[str, Any] | None = None,
) -> Encoder:
    """The backbone's encoder; an offline one without ``weights`` is fitted on ``folder``
    (or its earlier fit on the same files is reused)."""
    spec = get_spec(backbone)
    if spec.offline and weights is None:
        weights = fit_backbone(backbone, folder, camera, **(fit_args or {}))
    return _load(backbone, weights, device)


def decompose_folder(
    data: str | os.PathLike,
    backbone: str | None = None,
    *,
    method: str = "uvd",
    weights: str | os.PathLike | None = None,
    camera: str | None = None,
    min_interval: int | None = None,
    min_interval_s: float | None = None,
    gamma: float = DEFAULT_GAMMA,
    smoother: str = "rbf",
    method_args: dict[str, Any] | None = None,
    fit_args: dict[str, Any] | None = None,
    tolerance_s: float = 0.5,
    device: str | None = None,
    plots: bool = True,
    progress: bool = True,
    write: bool = True,
) -> Summary:
    """Decompose every episode of the demo folder ``data``; returns (and writes) the summary.

    ``method``: "uvd" or a baseline of ``decomposer.METHODS``; uvd and changepoint need a
    ``backbone`` (``decomposer.registry.BACKBONES``), the others ignore it. ``method_args``
    go to a baseline (e.g. ``{"n_subgoals": 4}`` for equal). Raises ``DecomposerError`` or
    ``demos.DemoFolderError``, naming the file and field at fault.
    """
    folder = DemoFolder(data)
    ids = folder.episode_ids
    if not ids:
        raise DemoFolderError("holds no episodes", str(Path(data) / "episodes"))
    fps = float(folder.info.fps)
    try:
        fn = get_method(method)
    except ValueError as e:
        raise DecomposerError(str(e)) from None
    if not (isinstance(gamma, int | float) and gamma > 0):
        raise DecomposerError(f"gamma must be a number > 0, got {gamma!r}")
    interval = frames_from_seconds(fps, min_interval, min_interval_s)
    margs = dict(method_args or {})

    encoder = None
    if method in EMBEDDING_METHODS:
        if backbone is None:
            raise DecomposerError(f"method={method} needs a backbone (backbone=NAME)")
        encoder = prepare_encoder(
            folder, backbone, weights=weights, camera=camera, device=device, fit_args=fit_args
        )
        if encoder.inputs == "frames":
            camera = default_camera(folder, camera)
    thumbs_camera = camera if camera is not None else next(iter(folder.info.cameras), None)

    params: dict[str, Any] = {"camera": camera, "fps": fps}
    if method == "uvd":
        params.update(
            min_interval=interval, min_interval_s=interval / fps, gamma=gamma, smoother=smoother
        )
    params.update(margs)
    summary = Summary(
        str(folder.root),
        backbone if encoder else None,
        encoder.weights_hash if encoder else None,
        method,
        params,
    )
    for ep in tqdm(ids, desc=f"decompose ({method})", disable=not progress, unit="episode"):
        low = folder.read_lowdim(ep)
        T = len(low["action"])
        stage = low.get("stage")
        if encoder is not None:
            e = episode_embeddings(folder, ep, encoder, camera)
            if len(e) != T:
                src = LOWDIM if encoder.inputs == "state" else f"{camera}.mp4"
                raise DemoFolderError(
                    f"has {len(e)} frames, {LOWDIM} has {T} actions", folder.rel(ep, src)
                )
        else:
            e = np.zeros((T, 1), np.float32)
        try:
            if method == "uvd":
                subgoals = decompose(e, min_interval=interval, gamma=gamma, smoother=smoother)
            elif method == "oracle":
                if stage is None:
                    raise DecomposerError(f"{folder.rel(ep, LOWDIM)}: method=oracle needs 'stage'")
                subgoals = fn(e, stage=stage, **margs)
            else:
                subgoals = fn(e, **margs)
        except TypeError as err:  # an argument the method does not take
            raise DecomposerError(f"method={method}: {err}") from None
        except ValueError as err:
            raise DecomposerError(f"episode {ep}: {err}") from None
        subgoals = [int(s) for s in subgoals]
        scores = None
        if stage is not None:  # a stage end within tolerance of the last frame: the final goal
            scores = boundary_scores(subgoals, stage, fps, tolerance_s, final_within_s=tolerance_s)
        summary.episodes.append(EpisodeResult(ep, T, subgoals, scores))
        if write:
            doc = Subgoals(subgoals, summary.backbone, summary.weights_hash, method, params)
            write_subgoals(folder, ep, doc)
        if write and plots:
            _plot(folder, ep, e, subgoals, stage, thumbs_camera, summary, interval, gamma, smoother)
    if write:
        atomic_write_json(folder.root / f"{SUMMARY}.json", summary.to_json())
        header = (
            f"# Decomposition of {folder.root}\n\nmethod {method}, backbone {summary.backbone} "
            f"({summary.weights_hash}), parameters {json_safe(params)}\n\n"
        )
        atomic_write_bytes(
            folder.root / f"{SUMMARY}.md", (header + summary.table() + "\n").encode()
        )
    return summary


def _plot(folder, ep, e, subgoals, stage, camera, summary, interval, gamma, smoother) -> None:
    from .plot import plot_decomposition

    curves, peaks = [], []
    if summary.method == "uvd":
        d = decompose_curves(e, min_interval=interval, gamma=gamma, smoother=smoother)
        if d.subgoals == subgoals:
            curves, peaks = d.curves, d.peaks
    elif summary.backbone is not None:  # the distance to each subgoal, unsmoothed
        curves = [np.linalg.norm(e[: g + 1] - e[g], axis=1) for g in subgoals]
    thumbs: dict[int, np.ndarray] = {}
    if camera is not None:
        want = set(subgoals)
        for i, f in enumerate(folder.iter_frames(ep, camera)):
            if i in want:
                thumbs[i] = f
            if i >= subgoals[-1]:
                break
    ends = stage_boundaries(stage) if stage is not None else ()
    title = f"episode {ep}: {summary.method}, backbone {summary.backbone}"
    plot_decomposition(
        folder.episode_dir(ep) / PLOT,
        subgoals,
        thumbs,
        curves=curves,
        peaks=peaks,
        stage_ends=ends,
        fps=summary.parameters["fps"],
        title=title,
    )
