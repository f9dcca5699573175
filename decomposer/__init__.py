"""UVD: subgoals from demo videos (embedding backbones, decomposition, relabelling, relay)."""

from .backbones import BACKBONES, load_backbone
from .baselines import METHODS, get_method
from .errors import DecomposerError
from .relabel import boundary_scores, goal_indices
from .relay import SubgoalRelay
from .uvd import decompose

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
