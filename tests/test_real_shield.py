"""The safety shield: each rule on its own, with a controllable clock."""

import logging
import threading

import numpy as np
import pytest

from real.config import ActionSpec, ConfigError, RobotSpec, ShieldSpec
from real.robot import Observation
from real.shield import Shield

PERIOD = 0.05


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


def obs(clock, seq=1, age=0.0, **state):
    state = {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}
    return Observation(stamp=clock.t - age, state=state, seq=seq)


def delta_ee_shield(clock, **kw):
    spec = ShieldSpec(
        max_delta=np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 2.0]),
        workspace_low=np.array([-0.3, -0.3, 0.8]),
        workspace_high=np.array([0.3, 0.3, 1.2]),
        **kw,
    )
    action = ActionSpec("delta_ee", 7, -np.ones(7), np.ones(7), pos_scale=0.05, gripper=(6,))
    return Shield(spec, action, PERIOD, clock=clock)


def joint_shield(clock):
    spec = ShieldSpec(
        max_delta=np.array([0.1, 0.1, 0.1, 1.0]),
        joint_low=np.array([-1.0, -1.0, -1.0]),
        joint_high=np.array([1.0, 1.0, 1.0]),
    )
    return Shield(spec, ActionSpec("joint_pos", 4, gripper=(3,)), PERIOD, clock=clock)


EEF = [0.0, 0.0, 1.0]


def test_in_bounds_action_passes_untouched():
    c = Clock()
    s = delta_ee_shield(c)
    a = np.array([0.2, -0.1, 0.3, 0.0, 0.1, 0.0, 1.0])
    out = s(a, obs(c, eef_pos=EEF))
    np.testing.assert_array_equal(out, a)
    assert s.interventions == 0


def test_nan_and_inf_hold_with_gripper_kept():
    c = Clock()
    s = delta_ee_shield(c)
    s(np.array([0.1, 0, 0, 0, 0, 0, 1.0]), obs(c, eef_pos=EEF))
    for bad in (np.nan, np.inf, -np.inf):
        a = np.array([0.1, bad, 0, 0, 0, 0, 1.0])
        out = s(a, obs(c, seq=2, eef_pos=EEF))
        np.testing.assert_array_equal(out, [0, 0, 0, 0, 0, 0, 1.0])  # zero delta, still closed
    assert s.counts["nonfinite"] == 3


def test_wrong_shape_holds():
    c = Clock()
    s = delta_ee_shield(c)
    out = s(np.zeros(6), obs(c, eef_pos=EEF))
    np.testing.assert_array_equal(out, np.zeros(7))
    assert s.counts["bad_shape"] == 1


def test_action_bounds_and_step_cap():
    c = Clock()
    s = delta_ee_shield(c)
    out = s(np.array([3.0, -0.7, 0.2, 0, 0, 0, 5.0]), obs(c, eef_pos=EEF))
    np.testing.assert_allclose(out, [0.5, -0.5, 0.2, 0, 0, 0, 1.0])
    assert s.counts["action_limit"] == 1 and s.counts["max_delta"] == 1


def test_workspace_box_clamps_the_target_not_beyond():
    c = Clock()
    s = delta_ee_shield(c)
    # eef 1 cm below the top: +0.5 (2.5 cm) up would leave the box; allowed: 1 cm
    out = s(np.array([0, 0, 0.5, 0, 0, 0, 0]), obs(c, eef_pos=[0.0, 0.0, 1.19]))
    assert out[2] == pytest.approx(0.2, abs=1e-5)
    assert s.counts["workspace"] == 1
    # outside the box already: an action moving further out is turned into one moving back
    out = s(np.array([0.4, 0, 0, 0, 0, 0, 0]), obs(c, seq=2, eef_pos=[0.31, 0.0, 1.0]))
    assert 0.31 + out[0] * 0.05 == pytest.approx(0.3)
    # moving inward from outside is left alone
    out = s(np.array([-0.4, 0, 0, 0, 0, 0, 0]), obs(c, seq=3, eef_pos=[0.31, 0.0, 1.0]))
    assert out[0] == pytest.approx(-0.4)
    assert s.counts["workspace"] == 2


def test_joint_limits_and_relative_cap():
    c = Clock()
    s = joint_shield(c)
    q = [0.95, 0.0, -0.5]
    out = s(np.array([1.5, 0.05, -0.9, 1.0]), obs(c, joint_pos=q))
    # joint 0: limit 1.0 (and within 0.1 of 0.95); joint 2: capped at q - 0.1
    np.testing.assert_allclose(out, [1.0, 0.05, -0.6, 1.0], atol=1e-6)
    assert s.counts["joint_limit"] == 1 and s.counts["max_delta"] == 1


def test_stale_observation_holds_after_three_periods():
    c = Clock()
    s = joint_shield(c)
    q = [0.1, 0.2, 0.3]
    a = np.array([0.15, 0.2, 0.3, 0.0])
    assert s(a, obs(c, seq=1, joint_pos=q)) is not None
    # same seq (nothing new), 2.9 periods later: still acted on
    c.t += 2.9 * PERIOD
    np.testing.assert_allclose(s(a + 0.01, obs(c, seq=1, age=2.9 * PERIOD, joint_pos=q)), a + 0.01)
    # 3.1 periods without new state: hold the last target sent
    c.t += 0.2 * PERIOD
    out = s(a + 0.05, obs(c, seq=1, age=3.1 * PERIOD, joint_pos=q))
    np.testing.assert_allclose(out, a + 0.01)
    assert s.counts["stale_observation"] == 1
    # a new seq whose stamp is old (a delayed message) is stale too
    out = s(a, obs(c, seq=2, age=0.5, joint_pos=q))
    assert s.counts["stale_observation"] == 2
    # fresh again: acts
    np.testing.assert_allclose(s(a, obs(c, seq=3, joint_pos=q)), a)


def test_hold_before_any_command_uses_the_measured_position():
    c = Clock()
    s = joint_shield(c)
    spec = ShieldSpec(joint_low=-np.ones(4), joint_high=np.ones(4))
    s = Shield(spec, ActionSpec("joint_pos", 4), PERIOD, clock=c)
    out = s(None, obs(c, joint_pos=[0.1, 0.2, 0.3, 0.4]))
    np.testing.assert_allclose(out, [0.1, 0.2, 0.3, 0.4])
    assert s.counts["no_action"] == 1
    # an absolute pose action with nothing sent yet: no safe target, send nothing
    s = Shield(ShieldSpec(), ActionSpec("ee_pose", 7), PERIOD, clock=c)
    assert s(None, obs(c, eef_pos=EEF)) is None


def test_estop_latches_from_any_thread_and_from_the_robot():
    c = Clock()
    s = delta_ee_shield(c)
    a = np.zeros(7)
    assert s(a, obs(c, eef_pos=EEF)) is not None
    threading.Thread(target=s.estop, args=("operator",)).start()
    for i in range(3):
        c.t += PERIOD
        assert s(a, obs(c, seq=2 + i, eef_pos=EEF)) is None
    assert s.latched and s.estop_reason == "operator"
    assert s.counts["estop"] == 1 and s.counts["suppressed"] == 3
    s.reset()  # a new episode does not clear it
    assert s(a, obs(c, seq=9, eef_pos=EEF)) is None
    s.release()
    assert s(a, obs(c, seq=10, eef_pos=EEF)) is not None
    o = obs(c, seq=11, eef_pos=EEF)
    o.estop = True
    assert s(a, o) is None and s.latched


def test_disabled_shield_still_never_sends_nan():
    c = Clock()
    s = delta_ee_shield(c, enabled=False)
    big = np.array([3.0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(s(big, obs(c, eef_pos=EEF)), big)
    np.testing.assert_array_equal(s(np.full(7, np.nan), obs(c, eef_pos=EEF)), np.zeros(7))


def test_every_intervention_is_logged(caplog):
    c = Clock()
    s = delta_ee_shield(c)
    with caplog.at_level(logging.WARNING, logger="uvdiff.shield"):
        s(np.array([np.nan] * 7), obs(c, eef_pos=EEF))
        s(np.array([2.0, 0, 0, 0, 0, 0, 0]), obs(c, eef_pos=EEF))
    text = caplog.text
    assert "nonfinite" in text and "action_limit" in text and "max_delta" in text
    assert len(caplog.records) == s.interventions == 3
    assert len(s.events) == 3


def test_robot_spec_from_config_names_bad_fields():
    ok = {
        "name": "arm",
        "rate_hz": 20,
        "action": {"kind": "joint_pos", "dim": 3},
        "joints": {"names": ["a", "b"], "lower": [-1, -1], "upper": [1, 1]},
        "shield": {"max_delta": 0.1, "workspace": {"low": [0, 0, 0], "high": [1, 1, 1]}},
    }
    spec = RobotSpec.from_config(ok)
    assert spec.period == pytest.approx(0.05)
    np.testing.assert_allclose(spec.shield.max_delta, [0.1] * 3)
    with pytest.raises(ConfigError, match="action.kind"):
        RobotSpec.from_config({**ok, "action": {"kind": "torque", "dim": 3}})
    with pytest.raises(ConfigError, match="rate_hz"):
        RobotSpec.from_config({**ok, "rate_hz": 0})
    with pytest.raises(ConfigError, match="joints.lower"):
        RobotSpec.from_config({**ok, "joints": {"names": ["a", "b"], "lower": [0], "upper": [1]}})
    with pytest.raises(ConfigError, match="workspace"):
        RobotSpec.from_config({**ok, "shield": {"workspace": {"low": [1, 1, 1], "high": [0] * 3}}})


def test_shipped_robot_configs_parse_and_shield():
    """Every configs/robot/*.yaml composes, names a driver and gives a valid spec; the ROS 2
    joint-space one clips a target past a joint limit and caps the step."""
    from pathlib import Path

    from hydra import compose, initialize_config_module

    names = sorted(p.stem for p in Path("configs/robot").glob("*.yaml"))
    assert {"sim", "rosbridge", "panda_joint_ros2"} <= set(names)
    with initialize_config_module("configs", version_base="1.3"):
        specs = {
            n: compose("deploy", overrides=[f"robot={n}", "checkpoint=x"]).robot for n in names
        }
    from real.deploy import make_robot
    from real.robot import Robot

    for name, cfg in specs.items():
        spec = RobotSpec.from_config(cfg)
        assert spec.rate_hz > 0 and isinstance(make_robot(cfg), Robot), name  # not connected
    spec = RobotSpec.from_config(specs["panda_joint_ros2"])
    assert spec.action.kind == "joint_pos" and len(spec.joints) == 7
    c = Clock()
    s = Shield(spec.shield, spec.action, spec.period, clock=c)
    q = np.array([0.0, 0.0, 0.0, -2.0, 0.0, 2.0, 0.0])
    target = q.copy()
    target[0], target[3] = 0.02, 0.5  # joint 4's upper limit is -0.15, and 0.5 is a big step
    out = s(np.append(target, 0.04), obs(c, joint_pos=q, eef_pos=[0.4, 0, 0.3]))
    assert out[0] == pytest.approx(0.02) and out[3] == pytest.approx(-2.0 + 0.05)
    assert s.counts["joint_limit"] == 1 and s.counts["max_delta"] == 1


def camera_obs(clock, seq, frame, eef):
    o = obs(clock, seq=seq, eef_pos=eef)
    o.frames["front"] = frame
    return o


def test_a_dark_camera_holds_the_arm():
    c = Clock()
    s = delta_ee_shield(c)
    a = np.array([0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    lit = np.full((48, 64, 3), 90, np.uint8)
    np.testing.assert_array_equal(s(a, camera_obs(c, 1, lit, EEF)), a)
    capped = np.zeros((48, 64, 3), np.uint8)  # a lens cap, or a driver publishing zeros
    c.t += PERIOD
    held = s(a, camera_obs(c, 2, capped, EEF))
    np.testing.assert_array_equal(held[:6], 0)  # delta_ee hold: no motion, gripper as sent
    assert s.counts["camera_dark"] == 1 and s.interventions == 1


def test_a_frozen_camera_holds_only_while_the_arm_moves():
    c = Clock()
    s = delta_ee_shield(c)
    a = np.array([0.2, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    frame = np.random.default_rng(0).integers(30, 200, (48, 64, 3), dtype=np.uint8)
    # a still arm in a still scene: the same picture for a second is no fault
    for k in range(21):
        c.t += PERIOD
        np.testing.assert_array_equal(s(a, camera_obs(c, k + 1, frame, EEF)), a)
    assert s.interventions == 0
    # the arm moves, the picture does not: after 10 periods (0.5 s) the shield holds
    outs = []
    for k in range(15):
        c.t += PERIOD
        outs.append(s(a, camera_obs(c, 100 + k, frame, [0.01 * k, 0.0, 1.0])))
    assert s.counts["camera_frozen"] >= 1
    assert all(np.array_equal(o, a) for o in outs[:9]) and np.array_equal(outs[-1][:6], np.zeros(6))
    # a live camera again: acting resumes
    c.t += PERIOD
    fresh = frame.copy()
    fresh[0, 0] += 1
    fresh[:4, :4] += 1
    np.testing.assert_array_equal(s(a, camera_obs(c, 200, fresh, [0.2, 0.0, 1.0])), a)


def test_camera_watchdog_settings_are_checked():
    with pytest.raises(ConfigError, match="camera_frozen_periods"):
        ShieldSpec(camera_frozen_periods=0)
