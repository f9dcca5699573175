"""benchmarks/peers/compare.py: the paired figures of the README's peer rows."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "peers" / "compare.py"


def write_eval(folder: Path, successes: list[bool], act_ms: float, first_seed: int = 3000) -> Path:
    folder.mkdir()
    rows = [{"seed": first_seed + i, "success": s} for i, s in enumerate(successes)]
    (folder / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "eval_info.json").write_text(json.dumps({"act_ms": act_ms}))
    return folder


def run(*args: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(SCRIPT), *map(str, args), "--names", "ours", "peer"]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_pairs_the_two_runs_seed_by_seed(tmp_path):
    ours = write_eval(tmp_path / "a", [True] * 8 + [False] * 2, act_ms=1.0)
    # seeds 0-3 both, 4-7 only ours, 8 only the peer, 9 neither
    peer = write_eval(tmp_path / "b", [True] * 4 + [False] * 4 + [True, False], act_ms=50.0)
    out = run(ours, peer)
    assert out.returncode == 0, out.stderr
    assert "ours: 80% [49, 94] (8/10), 1 ms" in out.stdout
    assert "peer: 50% [24, 76] (5/10), 50 ms" in out.stdout
    assert "ours - peer: +30 points" in out.stdout
    assert "4 both, 4 only ours, 1 only peer" in out.stdout
    assert "= 50x" in out.stdout


def test_runs_on_other_seeds_are_refused(tmp_path):
    ours = write_eval(tmp_path / "a", [True] * 5, act_ms=1.0)
    peer = write_eval(tmp_path / "b", [True] * 5, act_ms=1.0, first_seed=4000)
    out = run(ours, peer)
    assert out.returncode != 0
    assert "not on the same seeds" in out.stderr


def test_a_folder_that_is_no_eval_output_is_named(tmp_path):
    missing = tmp_path / "a"
    peer = write_eval(tmp_path / "b", [True], act_ms=1.0)
    out = run(missing, peer)
    assert out.returncode != 0 and f"{missing}: no episodes.jsonl" in out.stderr
