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

    c = OmegaConf.to_container(cfg, resolve=True)
    c.pop("hydra", None)
    data, out_dir, policy = c.pop("data"), c.pop("out_dir"), c.pop("policy")
    return train(data, out_dir, policy=policy, **c)


def main() -> None:
    import hydra

    @hydra.main(config_path="pkg://configs", config_name="train", version_base="1.3")
    def app(cfg) -> None:
        result = train_from_config(cfg)
        print(
            f"trained {result.steps} steps, loss {result.loss:.4f}, "
            f"{result.samples_per_s:.0f} samples/s; checkpoint: {result.checkpoint}"
        )

    app()


if __name__ == "__main__":
    main()
