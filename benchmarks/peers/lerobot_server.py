"""A LeRobot policy checkpoint served to ``uvdiff-eval`` through the peer protocol.

Runs with LeRobot's own interpreter (its venv pins another torch), never imports uvdiff: only
``sim/peer_wire.py``, loaded by path. The policy is loaded the way ``lerobot-eval`` loads it
(``PreTrainedPolicy.from_pretrained`` plus its saved pre- and post-processors), and each step's
uvdiff observation is mapped to LeRobot's features with the names ``uvdiff-convert --from
to-lerobot`` wrote into the dataset's ``meta/info.json`` (``observation.state`` = the state keys
in order, ``observation.environment_state``, ``observation.images.<camera>``)::

    # PEER.yaml for uvdiff-eval checkpoint=PEER.yaml
    command: [/tmp/lerobot-venv/bin/python, benchmarks/peers/lerobot_server.py,
              --policy, OUT/checkpoints/last/pretrained_model, --dataset, LEROBOT_DATASET]
    name: lerobot diffusion
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

WIRE = Path(__file__).resolve().parents[2] / "sim" / "peer_wire.py"


def load_wire():
    spec = importlib.util.spec_from_file_location("peer_wire", WIRE)
    wire = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wire)
    return wire


def feature_keys(info: dict) -> tuple[dict[str, list[tuple[str, int]]], dict[str, list[int]]]:
    """LeRobot feature -> [(uvdiff state key, dim)] from the names ``<key>_<i>``, and the
    cameras' [h, w]."""
    groups: dict[str, list[tuple[str, int]]] = {}
    cameras: dict[str, list[int]] = {}
    for name, ft in info["features"].items():
        if name.startswith("observation.images."):
            cameras[name.removeprefix("observation.images.")] = list(ft["shape"][:2])
        elif name.startswith("observation."):
            keys: list[tuple[str, int]] = []
            for n in ft.get("names") or []:
                key = re.sub(r"_\d+$", "", n)
                if keys and keys[-1][0] == key:
                    keys[-1] = (key, keys[-1][1] + 1)
                else:
                    keys.append((key, 1))
            groups[name] = keys
    return groups, cameras


class Served:
    def __init__(self, policy_dir: str, groups, cameras, threads: int, device: str = "cpu"):
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors

        torch.set_num_threads(threads)
        policy_type = json.loads((Path(policy_dir) / "config.json").read_text())["type"]
        self.policy = get_policy_class(policy_type).from_pretrained(policy_dir)
        self.policy.to(device).eval()
        self.pre, self.post = make_pre_post_processors(
            self.policy.config, pretrained_path=policy_dir,
            preprocessor_overrides={"device_processor": {"device": device}},
        )  # fmt: skip
        needed = set(self.policy.config.input_features)
        self.groups = {k: v for k, v in groups.items() if k in needed}
        self.cameras = [c for c in cameras if f"observation.images.{c}" in needed]

    def reset(self, seed):
        if seed is not None:
            torch.manual_seed(int(seed))
        self.policy.reset()

    @torch.no_grad()
    def act(self, obs):
        batch = {}
        for feature, keys in self.groups.items():
            v = np.concatenate([np.asarray(obs[k], np.float32).reshape(-1) for k, _ in keys])
            batch[feature] = torch.from_numpy(v)[None]
        for cam in self.cameras:
            img = torch.from_numpy(np.ascontiguousarray(obs[cam])).permute(2, 0, 1).float() / 255
            batch[f"observation.images.{cam}"] = img[None]
        action = self.post(self.policy.select_action(self.pre(batch)))
        return action[0].cpu().numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--policy", required=True, help="a pretrained_model folder of lerobot-train")
    p.add_argument("--dataset", required=True, help="the LeRobot dataset it was trained on")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    wire_out, sys.stdout = sys.stdout, sys.stderr  # LeRobot logs to stdout: keep it off the wire
    info = json.loads((Path(a.dataset) / "meta" / "info.json").read_text())
    groups, cameras = feature_keys(info)
    served = Served(a.policy, groups, cameras, a.threads, a.device)
    state = {k: d for keys in served.groups.values() for k, d in keys}
    inputs = {"state": state, "cameras": {c: cameras[c] for c in served.cameras}}
    action_dim = int(info["features"]["action"]["shape"][0])
    load_wire().serve(lambda: served, inputs, action_dim, out=wire_out)


if __name__ == "__main__":
    main()
