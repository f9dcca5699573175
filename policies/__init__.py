"""BESO: goal-conditioned score-based diffusion policies (EDM denoiser, samplers, training)."""
