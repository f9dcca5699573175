"""LeRobot's diffusion policy measured in LeRobot's own environment (run by bench_lerobot.py).

    LEROBOT_PYTHON benchmarks/lerobot_peer.py --threads 2 --chunks 3 [--train-steps 5]

Not importable from uvdiff's venv (LeRobot pins torch < 2.11): bench_lerobot.py starts this
script with the interpreter of a venv that has ``pip install lerobot==0.4.4``. It builds
``DiffusionPolicy`` from LeRobot's default ``DiffusionConfig`` (100 DDPM steps, ResNet-18,
UNet) and from the same config with a 10-step DDIM scheduler, on the observation sizes given
(state vector + 84x84 cameras), and prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def make_policy(state_dim: int, cameras: list[str], size: int, action_dim: int, ddim: int):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (state_dim,))}
    for cam in cameras:
        inputs[f"observation.images.{cam}"] = PolicyFeature(FeatureType.VISUAL, (3, size, size))
    outputs = {"action": PolicyFeature(FeatureType.ACTION, (action_dim,))}
    extra = {"noise_scheduler_type": "DDIM", "num_inference_steps": ddim} if ddim else {}
    cfg = DiffusionConfig(input_features=inputs, output_features=outputs, device="cpu", **extra)
    return DiffusionPolicy(cfg), cfg


def observation(cfg, gen: torch.Generator) -> dict[str, torch.Tensor]:
    obs = {}
    for key, feature in cfg.input_features.items():
        obs[key] = torch.rand((1, *feature.shape), generator=gen)
    return obs


def time_inference(policy, cfg, chunks: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    policy.eval()
    policy.reset()
    with torch.inference_mode():
        policy.select_action(observation(cfg, gen))  # warm-up: one chunk
        for _ in range(cfg.n_action_steps - 1):
            policy.select_action(observation(cfg, gen))
        per_chunk, per_call = [], []
        for _ in range(chunks * cfg.n_action_steps):
            plans = len(policy._queues["action"]) == 0  # this call runs the sampler
            t = time.perf_counter()
            policy.select_action(observation(cfg, gen))
            dt = time.perf_counter() - t
            per_call.append(dt)
            if plans:
                per_chunk.append(dt)
    total = sum(per_call)
    return {
        "chunk_s": sorted(per_chunk)[len(per_chunk) // 2],
        "per_action_ms": 1e3 * total / len(per_call),
        "actions": len(per_call),
        "n_action_steps": cfg.n_action_steps,
    }


def time_training(policy, cfg, batch_size: int, steps: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    batch = {}
    for key, feature in cfg.input_features.items():
        batch[key] = torch.rand((batch_size, cfg.n_obs_steps, *feature.shape), generator=gen)
    act_dim = cfg.output_features["action"].shape[0]
    batch["action"] = torch.randn((batch_size, cfg.horizon, act_dim), generator=gen)
    batch["action_is_pad"] = torch.zeros((batch_size, cfg.horizon), dtype=torch.bool)
    policy.train()
    opt = torch.optim.Adam(
        policy.parameters(), cfg.optimizer_lr, cfg.optimizer_betas, cfg.optimizer_eps,
        cfg.optimizer_weight_decay,
    )  # fmt: skip

    def one_step() -> None:
        loss, _ = policy.forward(dict(batch))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
        opt.step()

    one_step()  # warm-up
    t = time.perf_counter()
    for _ in range(steps):
        one_step()
    dt = (time.perf_counter() - t) / steps
    return {"samples_per_s": batch_size / dt, "s_per_step": dt, "batch_size": batch_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=3, help="timed chunks per config")
    ap.add_argument("--state-dim", type=int, default=12)
    ap.add_argument("--cameras", nargs="*", default=["agentview", "wrist"])
    ap.add_argument("--size", type=int, default=84)
    ap.add_argument("--action-dim", type=int, default=7)
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import lerobot

    for name, ddim in (("default (DDPM-100)", 0), ("DDIM-10", 10)):
        torch.manual_seed(0)
        policy, cfg = make_policy(args.state_dim, args.cameras, args.size, args.action_dim, ddim)
        row = {"peer": f"lerobot {lerobot.__version__} diffusion", "config": name}
        row["torch"] = torch.__version__
        row["params_m"] = sum(p.numel() for p in policy.parameters()) / 1e6
        row.update(time_inference(policy, cfg, args.chunks))
        print(json.dumps(row), flush=True)
    if args.train_steps:
        torch.manual_seed(0)
        policy, cfg = make_policy(args.state_dim, args.cameras, args.size, args.action_dim, 0)
        row = {"peer": f"lerobot {lerobot.__version__} diffusion", "config": "training"}
        row.update(time_training(policy, cfg, args.batch_size, args.train_steps))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
