"""Simulation: robosuite/MuJoCo environments, scripted experts, collection, evaluation."""

from .collect import CollectStats, collect
from .envs import SimEnv, env_spec, make_env
from .errors import RendererError, SimError, UnknownEnvError
from .evaluate import EvalResult, evaluate
from .experts import EXPERTS, Expert
from .rollout import Rollout, run_expert
from .spec import ObsSpec
from .tasks import ENVS, Task

__all__ = [
    "ENVS",
    "EXPERTS",
    "CollectStats",
    "EvalResult",
    "Expert",
    "ObsSpec",
    "RendererError",
    "Rollout",
    "SimEnv",
    "SimError",
    "Task",
    "UnknownEnvError",
    "collect",
    "env_spec",
    "evaluate",
    "make_env",
    "run_expert",
]
