"""UVD: subgoals from demo videos (embedding backbones, decomposition, relabelling, relay).

The names below load on first use (PEP 562): importing a light module of this package, such
as ``decomposer.task`` from the simulator's worker processes, does not pull in torch or scipy.
"""

from demos.lazy import lazy_exports

_HOMES = {
    "BACKBONES": "registry",
    "METHODS": "baselines",
    "DecomposerError": "errors",
    "SubgoalRelay": "relay",
    "boundary_scores": "relabel",
    "decompose": "uvd",
    "get_method": "baselines",
    "goal_indices": "relabel",
    "load_backbone": "weights",
}
__all__ = sorted(_HOMES)


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
