"""The chunk schedule: which planned action runs at control tick k.

A diffusion policy plans a chunk of ``horizon`` actions from one observation; action i of a
chunk planned at tick s belongs to tick ``s + i``. Two ways to turn chunks into one action per
tick, shared by ``policies.Policy.act`` (the evaluator's rollouts) and the real-time deploy
loop (``real.loop``):

- plain chunking: the newest chunk's action for tick k; a new chunk is due once
  ``n_action_steps`` of the newest have run (or it has none left);
- temporal ensembling (ACT): a chunk every tick, and the action for tick k is the average of
  every chunk's prediction for k, weighted ``exp(-m i)`` with i = 0 the oldest prediction.

``first`` is the first index of a chunk that may run: 0 when the plan is made within the tick
(simulation), 1 in real time, where the observation's own tick has passed by the time its
chunk arrives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

import numpy as np


class PlannedChunk(Protocol):
    tick: int
    actions: np.ndarray


class Chunk(NamedTuple):
    """A plan made from the observation of ``tick``: ``actions`` (horizon, A)."""

    tick: int
    actions: np.ndarray


def plan_due(newest: PlannedChunk | None, k: int, n_action_steps: int, ensemble: bool) -> bool:
    """Whether tick k needs a new chunk: always when ensembling, otherwise once the newest has
    run ``n_action_steps`` actions (or all it has)."""
    if ensemble or newest is None:
        return True
    return k - newest.tick >= min(n_action_steps, len(newest.actions))


@lru_cache(maxsize=64)
def ensemble_weights(n: int, m: float) -> np.ndarray:
    """ACT's weights for n predictions of one tick, oldest first: ``exp(-m i)``. Cached: the
    control loop asks for the same few every tick (read-only, shared)."""
    w = np.exp(-m * np.arange(n))
    w.flags.writeable = False
    return w


def blend(predictions: Sequence[np.ndarray], m: float) -> np.ndarray:
    """The weighted average of one tick's predictions (oldest first)."""
    w = ensemble_weights(len(predictions), m)
    return np.tensordot(w, np.stack(predictions), 1) / w.sum()


def scheduled_action(
    chunks: Sequence[PlannedChunk], k: int, m: float | None, first: int = 0
) -> tuple[np.ndarray | None, Any]:
    """The action for tick k from ``chunks`` (oldest first) and the chunk it came from (the
    newest that contributed), or (None, None) when no chunk covers tick k."""
    if m is not None:
        preds = [(c, k - c.tick) for c in chunks if first <= k - c.tick < len(c.actions)]
        if not preds:
            return None, None
        return blend([c.actions[i] for c, i in preds], m), preds[-1][0]
    newest = chunks[-1] if chunks else None
    if newest is not None and first <= k - newest.tick < len(newest.actions):
        return newest.actions[k - newest.tick], newest
    return None, None


def seam_jumps(actions: np.ndarray, handover: Sequence[bool]) -> dict[str, list[float]]:
    """Sums and counts of ``|a_t - a_(t-1)|`` (mean over action dimensions) where a new chunk
    takes over (``handover[t]``) and within a chunk: {"handover": [sum, n], "within": [sum, n]}.

    Seams show as larger jumps at the handovers than within chunks; sums and counts (not
    means) so that episodes add up.
    """
    a = np.asarray(actions, dtype=np.float64)
    out = {"handover": [0.0, 0], "within": [0.0, 0]}
    if len(a) < 2:
        return out
    jumps = np.abs(np.diff(a, axis=0)).mean(axis=1)
    at = np.asarray(handover[1 : len(a)], dtype=bool)
    for key, sel in (("handover", at), ("within", ~at)):
        out[key] = [float(jumps[sel].sum()), int(sel.sum())]
    return out


def seam_ratio(parts: Sequence[Mapping[str, Sequence[float]]]) -> dict[str, float | None]:
    """Mean jump at handovers, within chunks, and their ratio, over ``seam_jumps`` results."""
    mean = {}
    for key in ("handover", "within"):
        total, n = sum(p[key][0] for p in parts), sum(p[key][1] for p in parts)
        mean[key] = total / n if n else None
    h, w = mean["handover"], mean["within"]
    return {**mean, "ratio": h / w if h is not None and w else None}


def committed_ticks(latency_s: float, period_s: float, floor: int = 0) -> int:
    """Actions of a chunk planned now that run from the old chunk: the observation's own tick
    (passed by the time any plan arrives) and each tick due before the plan is in, i.e.
    ``max(1, ceil(latency / period))``, at least ``floor``."""
    return max(int(floor), 1, math.ceil(max(latency_s, 0.0) / period_s - 1e-9))
