"""Policy latency at batch 1 on this CPU: per inference call and per executed action.

    .venv/bin/python benchmarks/bench_policy_latency.py [--threads 1] [--calls 200] [--quick]
    .venv/bin/python benchmarks/bench_policy_latency.py --profile    # where a GPT call spends time

Policies with untrained weights of the shipped sizes (latency does not depend on the values):
residual MLP (configs/policy/beso_mlp.yaml), BESO-size GPT (d=240, 4 layers, 12 heads) on state,
and the GPT with two 84x84 cameras (ResNet-18 GroupNorm, 76x76 centre crop). Each call goes
through ``Policy.act`` (checks, normalisation, history, sampler, unnormalisation); "per call"
re-plans every step (n_action_steps=1), "per action" executes 8-action chunks.
Issue 4 goals at 3 steps: GPT <= 12 ms per call, MLP <= 1.5 ms, <= 3 ms per action with
8-action chunks, image policy <= 40 ms per call.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from policies.config import PolicyConfig
from policies.model import BesoModel
from policies.policy import Policy

STATE = {"joint_pos": 7, "eef_pos": 3, "gripper": 2}
ACTION_DIM = 7
CAMERAS = {"agentview": [84, 84], "wrist": [84, 84]}
POLICIES = {
    "mlp": dict(network="mlp", network_kwargs={"hidden": 256, "blocks": 4}),
    "gpt": dict(network="gpt", network_kwargs={"d_model": 240, "n_layers": 4, "n_heads": 12}),
    "gpt+2 cameras": dict(
        network="gpt",
        network_kwargs={"d_model": 240, "n_layers": 4, "n_heads": 12},
        cameras=CAMERAS,
        crop=[76, 76],
    ),
}


def make_policy(kind: str) -> Policy:
    torch.manual_seed(0)
    cfg = PolicyConfig(action_dim=ACTION_DIM, state=STATE, **POLICIES[kind])
    dims = {**STATE, "action": ACTION_DIM}
    stats = {
        k: {"min": [-1.0] * d, "max": [1.0] * d, "mean": [0.0] * d, "std": [0.5] * d}
        for k, d in dims.items()
    }
    return Policy(BesoModel(cfg), stats)


def observations(policy: Policy, n: int) -> list[dict[str, np.ndarray]]:
    """A stream of distinct observations (so nothing is served from a cache)."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        obs = {k: rng.uniform(-1, 1, d).astype(np.float32) for k, d in STATE.items()}
        for cam, (h, w) in policy.config.cameras.items():
            obs[cam] = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        out.append(obs)
    return out


def time_calls(policy: Policy, stream, goal) -> np.ndarray:
    times = np.empty(len(stream))
    for i, obs in enumerate(stream):
        t = time.perf_counter()
        policy.act(obs, goal)
        times[i] = time.perf_counter() - t
    return times * 1e3


def bench(kind: str, calls: int, steps_list, guidances) -> list[dict]:
    policy = make_policy(kind)
    stream = observations(policy, calls)
    goal = stream[-1]
    rows = []
    for steps in steps_list:
        for lam in guidances:
            policy.configure(steps=steps, guidance=lam, n_action_steps=1)
            time_calls(policy, stream[:10], goal)  # warm-up
            per_call = time_calls(policy, stream, goal)
            policy.configure(n_action_steps=8)
            time_calls(policy, stream[:16], goal)
            chunked = time_calls(policy, stream[: calls - calls % 8], goal)
            rows.append(
                dict(
                    policy=kind,
                    steps=steps,
                    guidance=lam,
                    p50=np.percentile(per_call, 50),
                    p95=np.percentile(per_call, 95),
                    per_action=chunked.mean(),
                    per_action_p95=np.percentile(chunked, 95),
                )
            )
            r = rows[-1]
            print(
                f"| {kind} | {steps} | {lam:g} | {r['p50']:.2f} | {r['p95']:.2f} | "
                f"{r['per_action']:.2f} | {r['per_action_p95']:.2f} |",
                flush=True,
            )
    return rows


def profile(kind: str = "gpt", steps: int = 3) -> None:
    """Top operators of ``act`` and the share of time outside the network."""
    from torch.profiler import profile as torch_profile

    policy = make_policy(kind)
    policy.configure(steps=steps, n_action_steps=1)
    stream = observations(policy, 200)
    goal = stream[-1]
    time_calls(policy, stream[:20], goal)
    net = policy.model.denoiser.net
    spent = []
    pre = net.register_forward_pre_hook(lambda m, a: spent.append(-time.perf_counter()))
    post = net.register_forward_hook(lambda m, a, o: spent.append(time.perf_counter()))
    total = time_calls(policy, stream, goal).sum()
    pre.remove()
    post.remove()
    in_net = sum(spent) * 1e3
    print(
        f"{kind}, {steps} steps: {total / len(stream):.2f} ms per call, "
        f"{in_net / total:.0%} inside the score network"
    )
    with torch_profile() as prof:
        time_calls(policy, stream[:100], goal)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="3 steps only, fewer calls")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--policies", nargs="*", default=list(POLICIES))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.profile:
        profile()
        return
    steps_list = [3] if args.quick else [1, 3, 5, 10]
    calls = 48 if args.quick else args.calls
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{args.threads} thread(s), batch 1, {calls} calls per cell; times in ms\n"
    )
    print(
        "| policy | steps | guidance | per call p50 | per call p95 | per action (8-chunks) mean "
        "| per action p95 |"
    )
    print("|---|---|---|---|---|---|---|")
    with torch.inference_mode():
        for kind in args.policies:
            bench(kind, calls, steps_list, (1.0, 1.5))


if __name__ == "__main__":
    main()
