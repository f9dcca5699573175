"""How often a demo folder's state jumps between consecutive frames, and whether row 0 is empty.

A value that moves by more than ``--jump`` from one frame to the next (20 Hz, normalised-free
units: metres, rotation-matrix entries, quaternion components) is no motion of the arm or the
objects: on robosuite's object-state it was a quaternion flipping between q and -q. Row 0 is
left out of the jumps and reported on its own ("all zeros": sensors read before they ran).

Usage:
  python benchmarks/check_state_jumps.py /tmp/simruns/demos_can /tmp/sq5/demos --episodes 30
"""

from __future__ import annotations

import argparse

import numpy as np

from demos import DemoFolder


def folder_jumps(root: str, key: str, episodes: int, jump: float) -> dict:
    folder = DemoFolder(root)
    counts, lengths, empty_first = [], [], 0
    for ep in folder.episode_ids[:episodes]:
        x = folder.read_episode(ep).state[key]
        counts.append(int((np.abs(np.diff(x[1:], axis=0)) > jump).any(axis=1).sum()))
        lengths.append(len(x))
        empty_first += bool(np.count_nonzero(x[0]) < x.shape[1] // 2)
    return {
        "dims": folder.info.state[key],
        "episodes": len(counts),
        "jumps": (np.mean(counts), min(counts), max(counts)),
        "steps": np.mean(lengths),
        "empty_first": empty_first,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", help="demo folders")
    ap.add_argument("--key", default="object", help="state key to check")
    ap.add_argument("--episodes", type=int, default=30, help="first N episodes of each folder")
    ap.add_argument("--jump", type=float, default=0.5, help="a change larger than this is a jump")
    args = ap.parse_args()
    print(f"| folder | {args.key} dims | steps with a jump, per episode (min-max) | of steps "
          "| row 0 mostly zeros |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for root in args.folders:
        r = folder_jumps(root, args.key, args.episodes, args.jump)
        mean, lo, hi = r["jumps"]
        print(f"| {root} | {r['dims']} | {mean:.0f} ({lo}-{hi}) | {r['steps']:.0f} "
              f"| {r['empty_first']}/{r['episodes']} |")  # fmt: skip


if __name__ == "__main__":
    main()
