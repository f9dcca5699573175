"""Two `uvdiff-eval` runs on the same seeds, side by side: each arm's success with its 95% Wilson
interval, the paired difference (Newcombe), and the policy's time per executed action.

    .venv/bin/python benchmarks/peers/compare.py EVAL_UVDIFF EVAL_PEER [--names uvdiff lerobot]

Errored episodes count as failures (as in uvdiff-eval's own rate); seeds must match.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sim.intervals import paired_counts, paired_text, rate_text  # noqa: E402


def load(run: Path) -> tuple[dict[int, bool], float | None]:
    """{seed: success} and the run's overall ms per executed action."""
    episodes = run / "episodes.jsonl"
    if not episodes.is_file():
        raise SystemExit(f"{run}: no episodes.jsonl (not a uvdiff-eval output folder)")
    rows = [json.loads(line) for line in episodes.read_text().splitlines() if line.strip()]
    info = json.loads((run / "eval_info.json").read_text())
    return {r["seed"]: bool(r["success"]) for r in rows}, info.get("act_ms")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("first", type=Path, help="uvdiff-eval output folder (usually ours)")
    p.add_argument("second", type=Path, help="uvdiff-eval output folder (usually the peer)")
    p.add_argument("--names", nargs=2, default=["first", "second"])
    a = p.parse_args(argv)
    (s1, ms1), (s2, ms2) = load(a.first), load(a.second)
    if s1.keys() != s2.keys():
        only = sorted(s1.keys() ^ s2.keys())[:5]
        raise SystemExit(f"the runs were not on the same seeds (e.g. {only}): not paired")
    seeds = sorted(s1)
    counts = paired_counts([s1[s] for s in seeds], [s2[s] for s in seeds])
    both, first_only, second_only, _ = counts
    n = len(seeds)
    for name, succ, ms in ((a.names[0], s1, ms1), (a.names[1], s2, ms2)):
        timing = f", {ms:.3g} ms per executed action" if ms is not None else ""
        print(f"{name}: {rate_text(sum(succ.values()), n)}{timing}")
    print(
        f"{a.names[0]} - {a.names[1]}: {paired_text(*counts)} "
        f"(seeds {seeds[0]}..{seeds[-1]}: {both} both, {first_only} only {a.names[0]}, "
        f"{second_only} only {a.names[1]})"
    )
    if ms1 and ms2:
        print(f"time per executed action: {a.names[1]} / {a.names[0]} = {ms2 / ms1:.0f}x")


if __name__ == "__main__":
    main()
