"""arrange on real MuJoCo: its orders and split, the layout reset makes, stages that count cubes
placed as asked (and only as asked), and the scripted expert completing held-out orders."""

import mujoco
import numpy as np
import pytest

from sim import SimError, make_env
from sim.arrange import PLACED_XY, SPOT_XY, START_NOISE, START_XY
from sim.experts import Expert
from sim.orders import SPOTS, TASK_ORDERS, parse_order, resolve_orders

ORDERS = TASK_ORDERS["arrange"]


@pytest.fixture(scope="module")
def env():
    with make_env("arrange") as e:
        yield e


def test_orders_split_so_every_held_out_subtask_is_seen_in_training():
    assert len(ORDERS.all) == 6 and all(red != green for red, green in ORDERS.all)
    train = [ORDERS.all[i] for i in ORDERS.splits["train"]]
    held = [ORDERS.all[i] for i in ORDERS.splits["heldout"]]
    assert len(train) == 4 and len(held) == 2 and not set(train) & set(held)
    for red, green in held:  # each cube's move is in the demos, never this pairing
        assert any(t[0] == red for t in train) and any(t[1] == green for t in train)
    assert {t[0] for t in train} == {t[1] for t in train} == set(SPOTS)
    assert parse_order("left,right", "arrange") == ("left", "right")
    assert resolve_orders("heldout", "arrange") == held
    with pytest.raises(SimError, match="must name two different spots"):
        parse_order("left,left", "arrange")
    with pytest.raises(SimError, match="orders apply to pickplace4, arrange only, not stack"):
        resolve_orders("train", "stack")


def test_reset_lays_the_cubes_out_near_their_starts(env):
    for seed in range(3):
        env.reset(seed=seed, options={"order": "middle,left"})
        raw = env.raw
        for colour, cube in (("red", raw.cubeA), ("green", raw.cubeB)):
            xy = raw.sim.data.body_xpos[raw.sim.model.body_name2id(cube.root_body)][:2]
            start = np.asarray(START_XY[colour]) + raw.table_offset[:2]
            assert np.abs(xy - start).max() <= START_NOISE + 1e-3
    assert env.episode_info["task"] == (
        "put the red cube on the middle spot, then the green cube on the left spot"
    )


def _put(env, cube, spot, dxy=(0.0, 0.0)):
    """Teleport a cube to rest on a spot (offset by dxy), still."""
    raw = env.raw
    m, d = raw.sim.model._model, raw.sim.data._data
    joint = raw.sim.model.joint_name2id(cube.joints[0])
    xy = np.asarray(SPOT_XY[spot]) + raw.table_offset[:2] + dxy
    d.qpos[m.jnt_qposadr[joint] :][:7] = [*xy, raw.table_offset[2] + cube.size[2], 1, 0, 0, 0]
    d.qvel[m.jnt_dofadr[joint] :][:6] = 0
    mujoco.mj_forward(m, d)


def _settle(env, steps=10):
    hold = np.zeros(7)
    for _ in range(steps):
        info = env.step(hold)[4]
    return info


def test_stages_count_cubes_placed_as_asked_in_order(env):
    env.reset(seed=0, options={"order": "left,right"})
    raw = env.raw
    _put(env, raw.cubeB, "right")  # green first: out of turn, not a stage
    assert _settle(env)["stage"] == 0
    _put(env, raw.cubeA, "left", (PLACED_XY * 1.5, 0.0))  # red beside its spot: not placed
    assert _settle(env)["stage"] == 0
    _put(env, raw.cubeA, "left")
    info = _settle(env)
    assert info["stage"] == 2 and info["success"]  # red placed, green already on its spot
    env.reset(seed=1, options={"order": "left,right"})
    _put(env, env.raw.cubeA, "left")
    assert _settle(env)["stage"] == 1
    _put(env, env.raw.cubeB, "middle")  # the wrong spot for green
    info = _settle(env)
    assert info["stage"] == 1 and not info["success"]


@pytest.mark.parametrize("order", ["left,right", "right,middle"])  # the two held-out orders
def test_expert_completes_held_out_orders(env, order):
    expert = Expert("arrange")
    _, info = env.reset(seed=7, options={"order": order})
    expert.reset(env, np.random.default_rng(7))
    stages = []
    for _ in range(env.horizon):
        _, _, done, _, info = env.step(expert.act())
        stages.append(info["stage"])
        if done:
            break
    assert info["success"] and stages[-1] == 2
    assert 1 in stages  # red was placed before green
    assert np.all(np.diff(stages) >= 0)
