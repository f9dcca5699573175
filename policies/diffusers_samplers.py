"""Run diffusers' EDM schedulers behind our ``(denoise, x, sigmas)`` signature.

They consume the bare network output F (they apply c_skip/c_out and, through
``scale_model_input``, c_in themselves), so ``denoise`` must offer ``raw(x_in, c_noise)`` and
``sigma_data`` (``edm.Denoiser`` and ``guidance.Guided`` do). Two traps (anchors/beso.md):
- initial noise: their ``init_noise_sigma`` is sqrt(sigma_max^2 + 1); the caller's ``x`` is
  already ``randn * sigmas[0]`` and is used as is;
- custom sigmas: ``set_timesteps(sigmas=...)`` reads values as a 0..1 ramp, so we set
  ``scheduler.sigmas`` ourselves and ``timesteps = ln(sigma)/4``, which is the network's c_noise.
Euler's ``s_churn`` is not offered: diffusers adds the churn noise after the network call.
"""

from __future__ import annotations

from functools import partial

import torch
from diffusers import EDMDPMSolverMultistepScheduler, EDMEulerScheduler

from .samplers import Sigmas

_SCHEDULERS = {
    "diffusers_euler": (EDMEulerScheduler, {}),
    "diffusers_ddim": (EDMDPMSolverMultistepScheduler, {"solver_order": 1}),
    "diffusers_dpmpp_2m": (EDMDPMSolverMultistepScheduler, {"solver_order": 2}),
    "diffusers_dpmpp_2m_sde": (
        EDMDPMSolverMultistepScheduler,
        {"solver_order": 2, "algorithm_type": "sde-dpmsolver++"},
    ),
}
_cache: dict[tuple[str, float], object] = {}


def _scheduler(name: str, sigma_data: float):
    """One scheduler per (name, sigma_data): building one computes a 1000-level table."""
    key = (name, sigma_data)
    if key not in _cache:
        cls, kw = _SCHEDULERS[name]
        _cache[key] = cls(sigma_data=sigma_data, final_sigmas_type="zero", **kw)
    return _cache[key]


def sample_diffusers(
    name: str,
    denoise,
    x: torch.Tensor,
    sigmas: Sigmas,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Step ``x`` (already ``randn * sigmas[0]``) through ``sigmas`` with a diffusers scheduler."""
    sigmas = torch.as_tensor(sigmas, dtype=torch.float32).cpu()
    if sigmas[-1] != 0:
        raise ValueError("sigmas must end with 0 (final_sigmas_type='zero')")
    sched = _scheduler(name, float(denoise.sigma_data))
    sched.set_timesteps(len(sigmas) - 1)
    sched.sigmas = sigmas
    sched.timesteps = sched.precondition_noise(sigmas[:-1])
    for t in sched.timesteps:
        x_in = sched.scale_model_input(x, t)
        f = denoise.raw(x_in, t.to(x.dtype).expand(x.shape[0]))
        x = sched.step(f, t, x, generator=generator, return_dict=False)[0]
    return x


DIFFUSERS_SAMPLERS = {name: partial(sample_diffusers, name) for name in _SCHEDULERS}
