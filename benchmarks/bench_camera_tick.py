"""Time per control tick of a camera policy at deployment, the frames' embedding included.

    .venv/bin/python benchmarks/bench_camera_tick.py CHECKPOINT DEMO_DIR [--ticks 400] [--threads 1]

Feeds ``Policy.act`` the frames and arm state of the demo folder's first episodes, one tick at
a time, as ``uvdiff-deploy``'s loop does (batch 1, the checkpoint's chunking; a policy on a
backbone's embeddings embeds each raw frame itself). Prints p50 / p95 / mean ms per tick, and
the backbone's own ms per frame per camera, so the embedding's share is plain. At 20 Hz a tick
has 50 ms.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from demos import DemoFolder
from policies import Policy
from policies.embeddings import embedded_cameras


def ticks(policy: Policy, folder: DemoFolder, n: int) -> list[dict[str, np.ndarray]]:
    cams = [*policy.config.cameras, *embedded_cameras(policy.config).values()]
    out = []
    for ep in folder.episode_ids:
        low = folder.read_lowdim(ep)
        frames = {c: folder.read_frames(ep, c) for c in cams}
        for t in range(len(low["action"])):
            obs = {k: np.asarray(low[k][t], np.float32) for k in policy.config.state}
            obs.update({c: frames[c][t] for c in cams})
            out.append(obs)
            if len(out) == n:
                return out
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("demos", help="a demo folder with the policy's cameras (frames to feed)")
    ap.add_argument("--ticks", type=int, default=400)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    policy = Policy.from_pretrained(a.checkpoint)
    stream = ticks(policy, DemoFolder(a.demos), a.ticks + 20)
    goal = stream[-1] if policy.config.uses_goal else None
    for obs in stream[:20]:  # warm-up (loads the backbone)
        policy.act(obs, goal)
    ms = np.empty(len(stream) - 20)
    for i, obs in enumerate(stream[20:]):
        t = time.perf_counter()
        policy.act(obs, goal)
        ms[i] = (time.perf_counter() - t) * 1e3
    s = policy.settings
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{a.threads} thread(s); {s['sampler']} {s['steps']} steps, "
          f"{s['n_action_steps']} actions per plan")  # fmt: skip
    print(f"per tick: p50 {np.percentile(ms, 50):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms, "
          f"mean {ms.mean():.2f} ms over {len(ms)} ticks")  # fmt: skip
    for cam, enc in policy._embedders.items():
        frame = stream[0][cam]
        t = time.perf_counter()
        for _ in range(50):
            enc.embed(frame[None])
        print(f"  {enc.name} embedding of {cam}: {(time.perf_counter() - t) / 50 * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
