"""UVD: subgoals from demo videos (embedding backbones, decomposition, relabelling, relay)."""

from .baselines import METHODS, get_method
from .errors import DecomposerError
from .registry import BACKBONES
from .relabel import boundary_scores, goal_indices
from .relay import SubgoalRelay
from .uvd import decompose
from .weights import load_backbone

__all__ = [
    "BACKBONES",
    "METHODS",
    "DecomposerError",
    "SubgoalRelay",
    "boundary_scores",
    "decompose",
    "get_method",
    "goal_indices",
    "load_backbone",
]
