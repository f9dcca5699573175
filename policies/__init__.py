"""BESO: goal-conditioned score-based diffusion policies (EDM denoiser, samplers, training).

``Policy.from_pretrained(dir)`` loads a checkpoint for inference; ``policies.train.train`` trains.
The names below load on first use (PEP 562), so light modules such as ``policies.chunks`` (the
deploy loop's schedule) import without torch.
"""

from demos.lazy import lazy_exports

_HOMES = {
    "CheckpointError": "checkpoint",
    "Policy": "policy",
    "PolicyConfig": "config",
    "PolicyInputError": "policy",
}
__all__ = sorted(_HOMES)


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
