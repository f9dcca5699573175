"""UVD: subgoals from demo videos (embedding backbones, decomposition, relabelling, relay)."""

from .baselines import METHODS, get_method
from .relabel import boundary_scores, goal_indices
from .relay import SubgoalRelay
from .uvd import decompose

__all__ = ["METHODS", "SubgoalRelay", "boundary_scores", "decompose", "get_method", "goal_indices"]
