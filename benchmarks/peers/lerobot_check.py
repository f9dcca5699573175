"""Run with LeRobot's interpreter: does LeRobot's own loader read an export, and do its
policies find the features they need? Prints the policy features; exits non-zero otherwise.

    /tmp/lerobot-venv/bin/python benchmarks/peers/lerobot_check.py LEROBOT_DATASET
"""

import sys

from lerobot.configs.types import FeatureType
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import dataset_to_policy_features
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig


def main() -> None:
    ds = LeRobotDataset("local/uvdiff", root=sys.argv[1], video_backend="pyav")
    feats = dataset_to_policy_features(ds.meta.features)
    print({k: (v.type.name, tuple(v.shape)) for k, v in feats.items()})
    item = ds[len(ds) // 2]
    print({k: tuple(v.shape) for k, v in item.items() if hasattr(v, "shape")})
    inputs = {k: f for k, f in feats.items() if f.type is not FeatureType.ACTION}
    outputs = {k: f for k, f in feats.items() if f.type is FeatureType.ACTION}
    cfg = DiffusionConfig(input_features=inputs, output_features=outputs, device="cpu")
    if cfg.robot_state_feature is None:
        raise SystemExit("no observation.state: export with --layout policy")
    print(
        "state",
        cfg.robot_state_feature.shape,
        "environment",
        getattr(cfg.env_state_feature, "shape", None),
        "images",
        list(cfg.image_features),
    )


if __name__ == "__main__":
    main()
