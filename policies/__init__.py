"""BESO: goal-conditioned score-based diffusion policies (EDM denoiser, samplers, training).

``Policy.from_pretrained(dir)`` loads a checkpoint for inference; ``policies.train.train`` trains.
"""

from .checkpoint import CheckpointError
from .config import PolicyConfig
from .policy import Policy, PolicyInputError

__all__ = ["CheckpointError", "Policy", "PolicyConfig", "PolicyInputError"]
