"""uvdiff's BESO policies side by side with LeRobot's diffusion policy, in the same run.

    .venv/bin/python benchmarks/bench_lerobot.py --lerobot-python /tmp/lerobot-venv/bin/python

LeRobot pins torch < 2.11, so it lives in a venv of its own:
    python3 -m venv /tmp/lerobot-venv
    /tmp/lerobot-venv/bin/pip install torch==2.9.1 torchvision==0.24.1
    /tmp/lerobot-venv/bin/pip install lerobot==0.4.4 torch==2.9.1 torchvision==0.24.1
and benchmarks/lerobot_peer.py is run with that interpreter. Both sides see the same observation
sizes (a 12-d state and two 84x84 cameras, 7-d actions) and the same thread count. Inference is
timed per executed action: LeRobot plans 8-action chunks (its default n_action_steps) with its
default 100 DDPM steps and with 10 DDIM steps; uvdiff's image GPT runs 3 DDIM steps, both
re-planning every action (BESO) and with 8-action chunks. Training: samples/s at the same batch
size (LeRobot: forward, backward, Adam on a fixed batch; uvdiff: ``train()`` with its data
loading, EMA and clipping, so the ratio leans against uvdiff).
Issue 4 goals: >= 100x faster per action than LeRobot's default, >= 10x than its DDIM-10.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_policy_latency import make_policy, observations, time_calls  # noqa: E402

from demos.synthetic import make_folder  # noqa: E402
from policies.train import train  # noqa: E402

PEER = Path(__file__).with_name("lerobot_peer.py")


def ours_inference(calls: int) -> list[dict]:
    rows = []
    for kind in ("gpt+2 cameras", "mlp"):
        policy = make_policy(kind)
        stream = observations(policy, calls)
        for chunk in (1, 8) if kind != "mlp" else (8,):
            policy.configure(steps=3, n_action_steps=chunk)
            time_calls(policy, stream[:16], stream[-1])  # warm-up
            ms = time_calls(policy, stream[: calls - calls % 8], stream[-1])
            name = f"uvdiff {kind}, 3 DDIM steps, {chunk}-action chunks"
            rows.append({"policy": name, "per_action_ms": float(ms.mean())})
    return rows


def ours_training(batch_size: int, steps: int) -> dict:
    policy = {
        "network": "gpt",
        "network_kwargs": {"d_model": 240, "n_layers": 4, "n_heads": 12},
        "crop": [76, 76],
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp) / "demo", episodes=8, T=100, size=(84, 84))
        out = Path(tmp) / "run"
        train(
            folder.root,
            out,
            policy=policy,
            cameras=["agentview", "wrist"],
            steps=steps,
            batch_size=batch_size,
            warmup_steps=2,
            log_every=max(1, steps // 4),
            checkpoint_every=steps,
            progress=False,
        )
        rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    sps = float(np.mean([r["samples_per_s"] for r in rows[1:]]))  # after the first interval
    return {"policy": "uvdiff gpt+2 cameras (train())", "samples_per_s": sps}


def peer(python: str, threads: int, chunks: int, train_steps: int, batch_size: int) -> list:
    cmd = [python, str(PEER), "--threads", str(threads), "--chunks", str(chunks)]
    cmd += ["--train-steps", str(train_steps), "--batch-size", str(batch_size)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lerobot-python", required=True, help="python of a venv with lerobot")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=3, help="LeRobot chunks timed per config")
    ap.add_argument("--calls", type=int, default=96, help="uvdiff calls timed per config")
    ap.add_argument("--train-steps", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    with torch.inference_mode():
        mine = ours_inference(args.calls)
    mine_train = ours_training(args.batch_size, max(8, 4 * args.train_steps))
    theirs = peer(args.lerobot_python, args.threads, args.chunks, args.train_steps, args.batch_size)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} (uvdiff), {theirs[0]['torch']} (LeRobot); ", end="")
    print(f"{args.threads} thread(s), batch 1; wall {time.perf_counter() - t0:.0f} s\n")
    print("| policy | per executed action (ms) | LeRobot default / this | LeRobot DDIM-10 / this |")
    print("|---|---|---|---|")
    lr = {r["config"]: r for r in theirs}
    default, ddim = lr["default (DDPM-100)"], lr["DDIM-10"]
    for r in theirs[:2]:
        name = f"{r['peer']} {r['config']} ({r['params_m']:.0f}M params)"
        print(f"| {name}, chunk {r['chunk_s']:.2f} s | {r['per_action_ms']:.1f} | | |")
    for r in mine:
        a = r["per_action_ms"]
        print(
            f"| {r['policy']} | {a:.2f} | {default['per_action_ms'] / a:.0f}x "
            f"| {ddim['per_action_ms'] / a:.0f}x |"
        )
    if "training" in lr:
        t = lr["training"]
        print(f"\n| training, batch {args.batch_size} | samples/s |\n|---|---|")
        print(f"| LeRobot diffusion (default config) | {t['samples_per_s']:.1f} |")
        ratio = mine_train["samples_per_s"] / t["samples_per_s"]
        print(f"| {mine_train['policy']} | {mine_train['samples_per_s']:.1f} ({ratio:.1f}x) |")


if __name__ == "__main__":
    main()
