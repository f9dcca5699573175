"""Training throughput (samples/s) of the shipped policy sizes on a synthetic demo folder.

    .venv/bin/python benchmarks/bench_policy_train.py [--steps 60] [--batch-size 64] [--images]


Runs ``policies.train.train`` (data loading, loss, AdamW, clipping, EMA; one checkpoint at the
end) and reports the samples/s of the steps after the first logging interval (warm-up).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from demos.synthetic import make_folder
from policies.train import train

POLICIES = {
    "mlp": {"network": "mlp", "network_kwargs": {"hidden": 256, "blocks": 4}},
    "gpt": {"network": "gpt", "network_kwargs": {"d_model": 240, "n_layers": 4, "n_heads": 12}},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--images",
        action="store_true",
        help="also two 84x84 cameras end to end: the GPT with ResNet-18 trunks, and the MLP with "
        "ResNet-18 and with compact trunks (the ratio of the two is the figure to quote)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs = dict(POLICIES)
    if args.images:
        runs["gpt+2 cameras"] = {**POLICIES["gpt"], "crop": [76, 76]}
        runs["mlp+2 cameras resnet18"] = {**POLICIES["mlp"], "crop": [76, 76]}
        runs["mlp+2 cameras compact"] = {
            **POLICIES["mlp"],
            "crop": [76, 76],
            "image_trunk": "compact",
        }
    with tempfile.TemporaryDirectory() as tmp:
        size = (84, 84)
        folder = make_folder(Path(tmp) / "demo", episodes=8, T=100, size=size)
        print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch_size}\n")
        print("| policy | samples/s | s per step |")
        print("|---|---|---|")
        for name, policy in runs.items():
            cameras = ["agentview", "wrist"] if "cameras" in name else []
            out = Path(tmp) / name.replace(" ", "_").replace("+", "_")
            t = time.perf_counter()
            train(
                folder.root,
                out,
                policy=policy,
                cameras=cameras,
                steps=args.steps,
                batch_size=args.batch_size,
                warmup_steps=5,
                log_every=args.steps // 3,
                checkpoint_every=args.steps,
                progress=False,
            )
            rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
            sps = sum(r["samples_per_s"] for r in rows[1:]) / max(1, len(rows) - 1)
            print(
                f"| {name} | {sps:.0f} | {args.batch_size / sps:.3f} |  "
                f"(wall {time.perf_counter() - t:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
