"""Subgoal relay at inference: which of a task demo's subgoals the policy should aim for now.

A demo's UVD subgoals specify the task; at each control step the relay looks at the current
frame's embedding and decides whether the active subgoal has been reached. Three rules:

- ``"paper"`` (UVD paper): switch when ``d(o, g) < eps`` and ``|h - B| < delta``, with h the
  control steps since this subgoal became active (0 at the step it did) and B its budget (the
  steps the demo took from the previous subgoal to it; from frame 0 for the first). Read literally,
  as here: a rollout that misses that step window never switches (``delta`` default 2).
- ``"relative"`` (UVD's ``InferenceWrapper``): switch when ``d / d0 < eps`` and ``h >= B - delta``,
  or when ``h > B + delta`` whatever the distance; d0 is the distance when the subgoal became
  active (``delta`` default 3). The timeout keeps a stalled rollout moving.
- ``"nearest"`` (UVD's real-robot setup): the subgoal slot of the nearest training observation;
  in effect a non-parametric high-level policy. Needs ``train_embeddings`` and
  ``train_goal_index``.

The relay never moves backwards; the distance rules move at most one subgoal per step, the
nearest-neighbour rule jumps straight to the retrieved slot (e.g. when a stage is already done).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Rule = Literal["paper", "relative", "nearest"]
DEFAULT_DELTA = {"relative": 3, "paper": 2, "nearest": 0}


def _matrix(x, name: str, dim: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or len(a) == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (N, D), got shape {a.shape}")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{name} has dimension {a.shape[1]}, the subgoals have {dim}")
    if not np.isfinite(a).all():
        raise ValueError(
            f"{name} has NaN or Inf values (row {int(np.argmax(~np.isfinite(a).all(1)))})"
        )
    return a


class SubgoalRelay:
    """Tracks the active subgoal of ``subgoal_embeddings`` (K, D) along a rollout.

    Call ``reset()`` at the start of an episode and ``update(embedding)`` once per control step;
    it returns the index of the subgoal to condition on. ``done`` turns True when the last
    subgoal's switch condition holds (for "nearest": when the last subgoal is active and closer
    than ``eps``). ``budgets`` (K,): e.g. ``decomposer.relabel.budgets(demo_subgoals)``.
    """

    def __init__(
        self,
        subgoal_embeddings: np.ndarray,
        *,
        rule: Rule = "paper",
        budgets: np.ndarray | None = None,
        eps: float = 0.2,
        delta: int | None = None,
        train_embeddings: np.ndarray | None = None,
        train_goal_index: np.ndarray | None = None,
    ):
        if rule not in DEFAULT_DELTA:
            raise ValueError(f"rule={rule!r}: use one of {', '.join(DEFAULT_DELTA)}")
        self.goals = _matrix(subgoal_embeddings, "subgoal_embeddings")
        K, D = self.goals.shape
        self.rule, self.eps = rule, float(eps)
        self.delta = DEFAULT_DELTA[rule] if delta is None else int(delta)
        if not self.eps > 0 or self.delta < 0:
            raise ValueError(f"eps must be > 0 and delta >= 0, got {eps}, {delta}")
        self.budgets = None
        if rule in ("paper", "relative"):
            if budgets is None:
                raise ValueError(
                    f"rule={rule!r} needs budgets (K,) steps per subgoal, "
                    "e.g. decomposer.relabel.budgets(demo_subgoals)"
                )
            self.budgets = np.asarray(budgets, dtype=np.int64)
            if self.budgets.shape != (K,):
                raise ValueError(f"budgets has shape {self.budgets.shape}, expected ({K},)")
        if rule == "nearest":
            if train_embeddings is None or train_goal_index is None:
                raise ValueError(
                    "rule='nearest' needs train_embeddings (N, D) and train_goal_index (N,)"
                )
            self.train = _matrix(train_embeddings, "train_embeddings", D)
            self.train_slot = np.asarray(train_goal_index)
            if self.train_slot.shape != (len(self.train),) or not np.issubdtype(
                self.train_slot.dtype, np.integer
            ):
                raise ValueError(
                    f"train_goal_index must be ({len(self.train)},) ints, "
                    f"got shape {self.train_slot.shape} dtype {self.train_slot.dtype}"
                )
            if self.train_slot.min() < 0 or self.train_slot.max() >= K:
                raise ValueError(f"train_goal_index values must lie in [0, {K - 1}]")
        self.reset()

    def reset(self) -> None:
        """Start a new episode at the first subgoal."""
        self.active, self.steps, self.d0, self.done = 0, -1, None, False
        self.distance = float("nan")

    def update(self, embedding: np.ndarray) -> int:
        """Feed the current frame's embedding (D,); returns the active subgoal index."""
        e = np.asarray(embedding, dtype=np.float64)
        if e.shape != self.goals.shape[1:]:
            raise ValueError(f"embedding has shape {e.shape}, expected ({self.goals.shape[1]},)")
        if not np.isfinite(e).all():
            raise ValueError("embedding has NaN or Inf values")
        self.steps += 1
        d = float(np.linalg.norm(e - self.goals[self.active]))
        self.distance = d
        if self.d0 is None:
            self.d0 = d
        if self.rule == "nearest":
            slot = int(self.train_slot[np.argmin(((self.train - e) ** 2).sum(axis=1))])
            self._advance_to(max(self.active, slot), e)
            self.done = self.active == len(self.goals) - 1 and self.distance < self.eps
        elif self._reached(d):
            if self.active == len(self.goals) - 1:
                self.done = True
            else:
                self._advance_to(self.active + 1, e)
        return self.active

    def _reached(self, d: float) -> bool:
        h, B, delta = self.steps, int(self.budgets[self.active]), self.delta
        if self.rule == "paper":
            return d < self.eps and abs(h - B) < delta
        rel = d / self.d0 if self.d0 > 0 else 0.0
        return (rel < self.eps and h >= B - delta) or h > B + delta

    def _advance_to(self, k: int, e: np.ndarray) -> None:
        if k != self.active:
            self.active, self.steps = k, 0
            self.d0 = self.distance = float(np.linalg.norm(e - self.goals[k]))
