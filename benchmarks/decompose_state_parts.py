"""UVD on parts of the low-dim state: which parts make the peaks land on stage ends?

The ``state`` backbone embeds the whole state (arm pose, gripper, every object's world pose
and its pose relative to the gripper), and on pickplace4 UVD cuts at the arm's own
turn-arounds as well as at the placements. This scores UVD (``decompose`` at the given
parameters, one fit of mean and std over the episodes per part) on chosen parts of the state,
to tell whether another choice of inputs would single out the placements:

- ``all``: what the ``state`` backbone embeds;
- ``world``: the objects' world positions only (what the stage labels are about);
- ``world+gripper``: and the gripper's opening; ``world+gripper+eef``: and the hand's position;
- ``to_eef``: the objects' positions relative to the hand;
- ``world+to_eef``.

Usage (a folder written by uvdiff-collect; the env is made once for the object layout):
  python benchmarks/decompose_state_parts.py --data /tmp/pp4b/demos --env pickplace4
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from decomposer.fitting import state_rows
from decomposer.relabel import boundary_scores
from decomposer.uvd import decompose
from demos import DemoFolder
from sim import make_env

PARTS = ("all", "world", "world+gripper", "world+gripper+eef", "to_eef", "world+to_eef")


def part_columns(slices: dict[str, slice], proprio: dict[str, int], part: str) -> np.ndarray:
    """Column indices of ``part`` in the row [eef_pos, eef_quat, gripper_qpos, object]."""
    at, cols = 0, {}
    for key, n in proprio.items():
        cols[key], at = np.arange(at, at + n), at + n
    obj = {k: np.arange(at + s.start, at + s.stop) for k, s in slices.items()}
    world = [v for k, v in obj.items() if k.endswith("_pos") and "_to_" not in k]
    to_eef = [v for k, v in obj.items() if k.endswith("_pos") and "_to_" in k]
    pieces = {
        "all": [*cols.values(), *obj.values()],
        "world": world,
        "world+gripper": [*world, cols["gripper_qpos"]],
        "world+gripper+eef": [*world, cols["gripper_qpos"], cols["eef_pos"]],
        "to_eef": to_eef,
        "world+to_eef": [*world, *to_eef],
    }[part]
    return np.concatenate(pieces)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="a demo folder with stage labels")
    ap.add_argument("--env", required=True, help="the sim env that recorded it")
    ap.add_argument("--max-episodes", type=int, default=24)
    ap.add_argument("--min-interval", type=int, nargs="+", default=[18, 30, 50])
    ap.add_argument("--gamma", type=float, nargs="+", default=[0.08, 0.02, 0.005])
    args = ap.parse_args()

    folder = DemoFolder(args.data)
    with make_env(args.env) as env:
        slices = env.object_slices
    proprio = {k: n for k, n in folder.info.state.items() if k != "object"}
    episodes = folder.episode_ids[: args.max_episodes]
    rows = {}
    for ep in episodes:  # the rows the state backbone embeds, and the stage labels
        rows[ep] = (state_rows(folder, ep), folder.read_lowdim(ep)["stage"])
    print(f"{args.data}: {len(episodes)} episodes, {folder.info.fps:g} fps")
    print("| inputs | min_interval | gamma | precision | recall | subgoals/ep |")
    print("|---|---:|---:|---:|---:|---:|")
    for part in PARTS:
        cols = part_columns(slices, proprio, part)
        x = np.concatenate([r[:, cols] for r, _ in rows.values()])
        mean, std = x.mean(0), x.std(0) + 1e-6
        for mi, gamma in itertools.product(args.min_interval, args.gamma):
            n, count = np.zeros(3), 0
            for r, stage in rows.values():
                sub = decompose((r[:, cols] - mean) / std, min_interval=mi, gamma=gamma)
                sc = boundary_scores(sub, stage, folder.info.fps, 0.5, final_within_s=0.5)
                n += (sc["n_matched"], sc["n_pred"], sc["n_true"])
                count += len(sub)
            p = n[0] / n[1] if n[1] else 1.0
            print(
                f"| {part} | {mi} | {gamma:g} | {p:.2f} | {n[0] / n[2]:.2f} "
                f"| {count / len(rows):.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
