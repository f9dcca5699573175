"""SubgoalRelay on synthetic rollouts whose switch steps follow from the rules by hand."""

import numpy as np
import pytest

from decomposer import SubgoalRelay, goal_indices
from decomposer.relabel import budgets

DIM = 8
POINTS = np.eye(DIM)[:4]  # start, then subgoals 0, 1, 2: pairwise sqrt(2) apart
GOALS = POINTS[1:]


def path(ends, noise=0.0, hold=0, seed=0):
    """Straight lines start -> goal 0 -> goal 1 -> ..., arriving at goal k at frame ends[k]."""
    frames, start = [POINTS[0]], 0
    for k, end in enumerate(ends):
        s = (np.arange(start + 1, end + 1) - start)[:, None] / (end - start)
        frames.append(POINTS[k] + (POINTS[k + 1] - POINTS[k]) * s)
        start = end
    x = np.vstack([*frames, np.repeat(POINTS[len(ends)][None], hold, axis=0)])
    return x + noise * np.random.default_rng(seed).normal(size=x.shape)


def run(relay, traj):
    """Active subgoal after each step, and the first step at which each index became active."""
    relay.reset()
    active = np.array([relay.update(e) for e in traj])
    switches = [int(np.argmax(active >= k)) for k in range(1, active.max() + 1)]
    return active, switches


ENDS = [30, 55, 95]
B = budgets(ENDS)  # [31, 25, 40]


def test_budgets_are_demo_steps_between_subgoals():
    # the first subgoal's budget counts frames 0..30 (31 steps, UVD's ``milestone_indices[0] + 1``),
    # the others the steps after the previous subgoal
    assert B.tolist() == [31, 25, 40]
    assert budgets([0, 1]).tolist() == [1, 1]


@pytest.mark.parametrize("rule", ["paper", "relative"])
def test_on_schedule_rollout_switches_near_the_demo_subgoals(rule):
    relay = SubgoalRelay(GOALS, rule=rule, budgets=B)
    active, switches = run(relay, path(ENDS, noise=0.003, hold=10))
    assert (np.diff(active) >= 0).all() and (np.diff(active) <= 1).all()
    assert len(switches) == 2
    assert np.abs(np.array(switches) - ENDS[:2]).max() <= 4, switches
    assert relay.done


def test_paper_rule_does_not_advance_early():
    # goal 0 reached at step 5 and held; the switch needs |h - 31| < 2: first at h = t = 30
    traj = np.vstack([path([5]), np.repeat(GOALS[:1], 60, axis=0)])
    relay = SubgoalRelay(GOALS, rule="paper", budgets=B)
    active, switches = run(relay, traj)
    assert switches[0] == 30
    assert (active[:30] == 0).all()


def test_paper_rule_never_advances_on_a_stall():
    # stuck halfway to goal 0 (distance 0.71 > eps): no switch, whatever the step count
    traj = np.vstack([path([20])[:11], np.repeat(path([20])[10:11], 200, axis=0)])
    relay = SubgoalRelay(GOALS, rule="paper", budgets=B)
    active, _ = run(relay, traj)
    assert (active == 0).all() and not relay.done


def test_paper_rule_misses_a_late_arrival():
    # the literal rule: arriving after the window h in (B-2, B+2) leaves the relay stuck
    traj = np.vstack([path([40]), np.repeat(GOALS[:1], 30, axis=0)])
    active, _ = run(SubgoalRelay(GOALS, rule="paper", budgets=B), traj)
    assert (active == 0).all()


def test_relative_rule_times_out_of_a_stall():
    # no progress at all: each subgoal is given up at h = B + 4 (h > B + 3), the last one too
    traj = np.repeat(POINTS[:1], 120, axis=0)
    relay = SubgoalRelay(GOALS, rule="relative", budgets=B)
    active, switches = run(relay, traj)
    assert switches == [35, 35 + 29]
    done_at = 35 + 29 + 44
    relay.reset()
    flags = []
    for e in traj:
        relay.update(e)
        flags.append(relay.done)
    assert flags.index(True) == done_at


def test_relative_rule_waits_for_the_budget_when_early():
    # goal 0 reached at step 5: relative distance 0 < 0.2, but it waits until h = B - 3 = 28
    traj = np.vstack([path([5]), np.repeat(GOALS[:1], 60, axis=0)])
    active, switches = run(SubgoalRelay(GOALS, rule="relative", budgets=B), traj)
    assert switches[0] == 28 and (active[:28] == 0).all()


def test_relative_rule_uses_distance_relative_to_activation():
    # scaled by 10, absolute distances never drop below eps=0.2 near a goal, relative ones do
    traj = 10 * np.vstack([path([25]), np.repeat(GOALS[:1], 5, axis=0)])
    rel = SubgoalRelay(10 * GOALS, rule="relative", budgets=[25, 25, 25])
    paper = SubgoalRelay(10 * GOALS, rule="paper", budgets=[25, 25, 25], eps=0.2)
    traj = traj + 0.2 * np.random.default_rng(0).normal(size=traj.shape)  # |noise| ~ 0.57
    _, rel_switches = run(rel, traj)
    assert rel_switches and 22 <= rel_switches[0] <= 25
    paper_active, _ = run(paper, traj)
    assert paper_active.max() == 0


def _nearest_relay():
    demo = path(ENDS, hold=5)
    sub = [*ENDS[:-1], len(demo) - 1]
    slots = np.searchsorted(sub, goal_indices(sub, len(demo)))  # which subgoal each frame aims at
    return SubgoalRelay(GOALS, rule="nearest", train_embeddings=demo, train_goal_index=slots)


def test_nearest_rule_follows_the_training_slots():
    relay = _nearest_relay()
    active, switches = run(relay, path(ENDS, noise=0.01, hold=5, seed=3))
    # training frame t (t <= 30) has slot 0, 31..55 slot 1, after that slot 2
    assert all(abs(s - e) <= 2 for s, e in zip(switches, [31, 56], strict=True)), switches
    assert active[-1] == 2 and relay.done


def test_nearest_rule_never_moves_back_and_jumps_when_a_stage_is_done():
    relay = _nearest_relay()
    traj = path(ENDS)
    # start at goal 1 (stage 0 and 1 already done), then wander back to the start
    relay.reset()
    assert relay.update(traj[60]) == 2
    assert [relay.update(e) for e in traj[::-1]] == [2] * len(traj)


@pytest.mark.parametrize("rule", ["paper", "relative", "nearest"])
def test_relay_never_moves_backwards_on_random_rollouts(rule):
    rng = np.random.default_rng(1)
    demo = rng.normal(size=(100, DIM)).cumsum(0) * 0.1
    relay = SubgoalRelay(
        demo[[30, 60, 99]],
        rule=rule,
        budgets=[30, 30, 39],
        eps=0.5,
        train_embeddings=demo,
        train_goal_index=np.repeat([0, 1, 2], [31, 30, 39]),
    )
    for seed in range(3):
        traj = demo + 0.3 * np.random.default_rng(seed).normal(size=demo.shape)
        active, _ = run(relay, traj)
        assert (np.diff(active) >= 0).all()
        if rule != "nearest":
            assert (np.diff(active) <= 1).all()


def test_reset_starts_over():
    relay = SubgoalRelay(GOALS, rule="relative", budgets=B)
    run(relay, np.repeat(POINTS[:1], 120, axis=0))
    assert relay.done and relay.active == 2
    relay.reset()
    assert not relay.done and relay.active == 0 and relay.update(POINTS[0]) == 0


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"rule": "paper"}, "budgets"),
        ({"rule": "relative", "budgets": [1, 2]}, "budgets"),
        ({"rule": "greedy", "budgets": B}, "rule"),
        ({"rule": "nearest"}, "train_embeddings"),
        (
            {
                "rule": "nearest",
                "train_embeddings": np.zeros((5, DIM + 1)),
                "train_goal_index": [0] * 5,
            },
            "dimension",
        ),
        (
            {
                "rule": "nearest",
                "train_embeddings": np.zeros((5, DIM)),
                "train_goal_index": [0] * 4,
            },
            "train_goal_index",
        ),
        (
            {
                "rule": "nearest",
                "train_embeddings": np.zeros((5, DIM)),
                "train_goal_index": [3] * 5,
            },
            r"\[0, 2\]",
        ),
    ],
)
def test_bad_construction_raises(kw, match):
    with pytest.raises(ValueError, match=match):
        SubgoalRelay(GOALS, **kw)


def test_bad_embeddings_raise():
    with pytest.raises(ValueError, match="subgoal_embeddings"):
        SubgoalRelay(GOALS[0], budgets=[1])
    relay = SubgoalRelay(GOALS, budgets=B)
    with pytest.raises(ValueError, match=rf"shape \({DIM + 1},\).*\({DIM},\)"):
        relay.update(np.zeros(DIM + 1))
    with pytest.raises(ValueError, match="NaN"):
        relay.update(np.full(DIM, np.nan))


def test_task_demos_are_cut_as_the_policys_training_subgoals_were():
    """A checkpoint trained on evenly spaced subgoals is relayed on evenly spaced ones."""
    from decomposer.task import RelaySettings, task_goals

    equal = RelaySettings().for_policy({"method": "equal", "n_subgoals": 3})
    assert (equal.cut, equal.n_subgoals) == ("equal", 3)
    assert RelaySettings(cut="equal").for_policy(None).cut == "uvd"
    rows = {"x": np.arange(31.0)[:, None]}
    goals = task_goals(rows, relay=equal, embed=lambda v: np.asarray(v["x"]), fps=20)
    assert goals.subgoals == [10, 20, 30]
    with pytest.raises(ValueError, match="relay cut='even'"):
        RelaySettings(cut="even")
