"""Refactors change no number: a checkpoint written by the code before the architecture step,
sampled and evaluated by today's code, gives the actions and episodes recorded then.

``tests/golden/make_golden.py`` wrote ``tests/golden/`` at the commit named in
``expected.json``; rerun it only when a change is meant to move these figures (and say so).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.evaluate import evaluate

GOLDEN = Path(__file__).parent / "golden"
sys.path.insert(0, str(GOLDEN))
from make_golden import (  # noqa: E402
    EVAL,
    as_arrays,
    episode_figures,
    sampled_actions,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())


def test_old_checkpoint_samples_the_recorded_actions():
    inputs = [(as_arrays(obs), as_arrays(goal)) for obs, goal in EXPECTED["inputs"]]
    got = sampled_actions(GOLDEN / "checkpoint", inputs)
    np.testing.assert_allclose(got, EXPECTED["actions"], rtol=0, atol=1e-6)


def test_old_checkpoint_evaluates_to_the_recorded_episodes(tmp_path):
    res = evaluate(GOLDEN / "checkpoint", "lift", out_dir=tmp_path, **EVAL)
    assert episode_figures(res.info["per_episode"]) == EXPECTED["episodes"]
    assert any(e["subgoal_switches"] for e in EXPECTED["episodes"])  # the relay ran
