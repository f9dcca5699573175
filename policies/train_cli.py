"""uvdiff-train: a thin hydra app over ``policies.train.train`` (config: configs/train.yaml).

uvdiff-train data=DEMO_DIR policy=beso_mlp|beso_gpt goal=final|future|uvd|none [key=value ...]
accelerate launch --multi_gpu --num_processes N -m policies.train_cli ... device=cuda
"""

from __future__ import annotations

from typing import Any

from .train import TrainResult, train


def train_from_config(cfg: Any) -> TrainResult:
    """Map the resolved hydra config onto ``train``'s arguments (also used by the tests)."""
    from omegaconf import OmegaConf

    from configs.command import renamed_setting

    c = OmegaConf.to_container(cfg, resolve=True)
    c.pop("hydra", None)
    data, out_dir, policy = c.pop("data"), c.pop("out_dir"), c.pop("policy")
    c["steps"] = renamed_setting(c, "steps", "train_steps", "uvdiff-train")
    c.pop("train_steps")
    return train(data, out_dir, policy=policy, **c)


def run(cfg: Any) -> int:
    result = train_from_config(cfg)
    print(
        f"trained {result.steps} steps, loss {result.loss:.4f}, "
        f"{result.samples_per_s:.0f} samples/s; checkpoint: {result.checkpoint}"
    )
    return 0


def main() -> None:
    from configs.command import command_main

    command_main("train", run)


if __name__ == "__main__":
    main()
