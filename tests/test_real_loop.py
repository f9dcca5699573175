"""The deploy loop: chunk scheduling by tick, past-due drops, holds, ensembling, watchdogs.

The scheduling tests use a planner whose chunks encode where each action came from
(value = 100 * planning tick + index), and a point robot that integrates its commands, so each
sent action can be traced to its chunk slot. The end-to-end checks drive the MuJoCo arm.
"""

import threading
import time

import numpy as np
import pytest

from decomposer.task import FixedGoal, RelayGoal, RelaySettings, state_embedder
from real.config import ActionSpec, ShieldSpec
from real.deploy import DEFAULT_RELAY
from real.loop import LoopConfig, run_loop
from real.robot import Observation, Robot
from real.shield import Shield

RATE = 50.0


class PointRobot:
    """A 2-D point that moves by each delta command; fresh state every command."""

    def __init__(self, stop_after=None, estop_at=None):
        self.pos = np.zeros(2, np.float32)
        self.seq = 0
        self.sent = []
        self.stop_after, self.estop_at = stop_after, estop_at
        self.stamp = time.time()
        self.lock = threading.Lock()

    def connect(self):
        pass

    def observe(self):
        with self.lock:
            estop = self.estop_at is not None and len(self.sent) >= self.estop_at
            return Observation(
                self.stamp,
                {"pos": self.pos.copy(), "tick": np.float32([self.seq])},
                seq=self.seq,
                estop=estop,
            )

    def command(self, a):
        with self.lock:
            self.sent.append(np.array(a))
            if self.stop_after is not None and len(self.sent) >= self.stop_after:
                return  # the robot went silent: no new state, the stamp ages
            self.pos = self.pos + np.asarray(a[:2], np.float32) * 0.0
            self.seq += 1
            self.stamp = time.time()

    def close(self):
        pass


class TracePlanner:
    """Chunks whose values say which tick planned them and which slot each action is."""

    def __init__(self, horizon=6, n_action_steps=3, delay=0.0, nan_at=None):
        self.horizon, self.delay, self.nan_at = horizon, delay, nan_at
        self.settings = {"n_action_steps": n_action_steps}
        self.ticks = []

    def reset(self, seed=None):
        self.last = None

    def observe(self, obs):
        self.last = obs

    def predict_chunk(self, obs, goal):
        tick = int(self.last["tick"][0])
        self.ticks.append(tick)
        if self.delay:
            time.sleep(self.delay)
        c = np.zeros((self.horizon, 3))
        c[:, 0] = 100 * tick + np.arange(self.horizon)
        if self.nan_at is not None and tick >= self.nan_at:
            c[:, 1] = np.nan
        return c


class SteadyClock:
    """Sleeps for real, but time only moves by the sleeps: a tick is never late, so slot k is
    the k-th command whatever the machine's load (for the scheduling checks)."""

    def __init__(self):
        self.t = 0.0

    def clock(self):
        return self.t

    def sleep(self, dt):
        time.sleep(dt)
        self.t += dt


def steady(**kw):
    c = SteadyClock()
    return {"clock": c.clock, "sleep": c.sleep}


def shield(dim=3, **kw):
    action = ActionSpec("delta_joint", dim)
    return Shield(ShieldSpec(**kw), action, 1 / RATE)


def test_robot_protocol_is_structural():
    assert isinstance(PointRobot(), Robot)
    from sim.robot import SimRobot

    assert isinstance(SimRobot("lift"), Robot)  # not connected: builds nothing


def test_actions_come_from_their_chunk_slot_and_past_due_are_dropped():
    robot, planner = PointRobot(), TracePlanner(horizon=6, n_action_steps=3)
    report = run_loop(robot, planner, shield(), LoopConfig(rate_hz=RATE, max_steps=30), **steady())
    assert report.status == "max_steps" and report.steps == 30
    sent = [int(a[0]) for a in robot.sent]
    # every non-hold action is slot i >= 1 of a chunk planned at tick t, sent at tick t + i
    executed = [(k, s) for k, s in enumerate(sent) if s != 0]
    assert len(executed) >= 20
    for k, s in executed:
        tick, i = divmod(s, 100)
        assert tick + i == k and 1 <= i < 6, (k, s)
    # re-planning every n_action_steps ticks; index 0 is never sent
    assert all(s % 100 != 0 for _, s in executed)
    assert report.chunks >= 8
    assert report.held == report.shield["interventions"].get("no_action", 0) >= 1
    t = report.timings_ms
    assert t["observe"]["p50"] < 5 and t["infer"]["n"] == report.chunks
    # the age of the observation an action came from, when sent: 1-3 ticks + one stamp lag
    assert 1000 / RATE <= t["obs_age"]["p50"] <= 1000 / RATE * 5


def test_fixed_rate_and_a_stall_skips_ticks_instead_of_bursting():
    class Stalling(PointRobot):
        def observe(self):
            if self.seq == 15 and not getattr(self, "stalled", False):
                self.stalled = True
                time.sleep(6 / RATE)  # the robot link hangs for 6 periods once
            return super().observe()

    robot = Stalling()
    sent_at = []
    report = run_loop(
        robot,
        TracePlanner(),
        shield(),
        LoopConfig(rate_hz=RATE, max_steps=60),
        on_step=lambda k, o, a: sent_at.append((k, time.perf_counter())),
    )
    assert report.status == "max_steps"
    assert report.overruns >= 1 and 4 <= report.skipped <= 8 + 2 * report.overruns
    assert report.steps + report.skipped == 60
    assert report.achieved_hz == pytest.approx(report.steps / report.duration_s)
    # after the stall the clock carries on at its rate: no burst of catch-up commands
    (i,) = [j for j in range(1, len(sent_at)) if sent_at[j][0] - sent_at[j - 1][0] > 3]
    gaps = np.diff([t for _, t in sent_at[i : i + 6]])
    assert (gaps > 0.5 / RATE).all(), gaps


def test_slow_inference_drops_past_due_actions_and_holds():
    robot = PointRobot()
    # each plan takes 3.5 ticks: slots 1-3 are past due when the chunk lands
    planner = TracePlanner(horizon=6, n_action_steps=2, delay=3.5 / RATE)
    report = run_loop(robot, planner, shield(), LoopConfig(rate_hz=RATE, max_steps=40), **steady())
    sent = [int(a[0]) for a in robot.sent]
    for k, s in enumerate(sent):
        if s:
            tick, i = divmod(s, 100)
            # nothing late was executed: slots 1-2 are due before any plan can land; slot 3
            # only when tick 3 starts on time (on a loaded machine it may start after 3.5)
            assert tick + i == k and i >= 3, (k, s)
    assert report.dropped >= 2 * (report.chunks - 2)
    assert report.held > 0


class PrefixPlanner(TracePlanner):
    """A TracePlanner with RTC on, recording the prefix each plan is held to."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.settings["rtc"] = True
        self.prefixes = []

    def predict_chunk(self, obs, goal, prefix=None):
        self.prefixes.append((int(self.last["tick"][0]), prefix))
        return super().predict_chunk(obs, goal)


def test_rtc_holds_each_plan_to_the_running_chunk_for_the_ticks_inference_takes():
    robot = PointRobot()
    planner = PrefixPlanner(horizon=8, n_action_steps=4, delay=2.5 / RATE)
    run_loop(robot, planner, shield(), LoopConfig(rate_hz=RATE, max_steps=30), **steady())
    assert planner.prefixes[0][1] is None  # nothing runs yet: the first plan is free
    held = [(tick, p) for tick, p in planner.prefixes[1:] if p is not None]
    assert len(held) >= 3
    for tick, (actions, committed) in held:
        old, i = divmod(int(actions[0, 0]), 100)
        assert old + i == tick  # the running chunk's action for the plan's own tick, onwards
        np.testing.assert_array_equal(actions[:, 0] % 100, np.arange(i, 8))
        # 2.5 ticks of inference: the plan's own tick and the 2-3 after it run the old chunk
        assert min(3, len(actions)) <= committed <= len(actions)


def test_temporal_ensemble_blends_overlapping_chunks():
    robot, planner = PointRobot(), TracePlanner(horizon=4, n_action_steps=1)
    m = 0.5
    planner.settings["temporal_ensemble"] = m  # the policy's setting decides, as in simulation
    report = run_loop(robot, planner, shield(), LoopConfig(rate_hz=RATE, max_steps=20), **steady())
    assert report.chunks >= 15  # a plan every tick
    # tick k blends chunks from ticks k-3..k-1 (those present): value = sum w_j (100 t_j + k - t_j)
    k, v = 12, robot.sent[12][0]
    ts = [t for t in planner.ticks if 0 < k - t < 4]
    w = np.exp(-m * np.arange(len(ts)))
    assert v == pytest.approx(np.dot(w, [100 * t + k - t for t in ts]) / w.sum())


def test_nan_action_is_never_sent():
    robot, planner = PointRobot(), TracePlanner(nan_at=10)
    report = run_loop(robot, planner, shield(), LoopConfig(rate_hz=RATE, max_steps=30))
    assert all(np.isfinite(a).all() for a in robot.sent)
    assert report.shield["interventions"]["nonfinite"] >= 10
    # after the NaNs start every command is a hold (zero delta)
    assert all((a == 0).all() for a in robot.sent[14:])


def test_estop_mid_chunk_sends_nothing_more():
    robot, planner = PointRobot(estop_at=7), TracePlanner(horizon=8, n_action_steps=6)
    report = run_loop(robot, planner, shield(), LoopConfig(rate_hz=RATE, max_steps=30), **steady())
    assert report.status == "estop" and report.exit_code != 0
    assert len(robot.sent) == 7  # tick 7 saw the e-stop in the middle of a 6-action chunk
    assert report.shield["estop"] and report.sent == 7


def test_silent_robot_is_held_then_reported_lost():
    robot, planner = PointRobot(stop_after=10), TracePlanner()
    report = run_loop(
        robot, planner, shield(), LoopConfig(rate_hz=RATE, max_steps=200, lost_after=0.3)
    )
    assert report.status == "robot_lost" and report.exit_code == 3
    # stale after 3 periods: every command after that holds (zero delta)
    stale = report.shield["interventions"]["stale_observation"]
    assert stale >= 0.3 * RATE - 5
    assert all((a == 0).all() for a in robot.sent[-stale:])
    assert report.steps < 10 + 0.3 * RATE + 5


def test_dry_run_computes_but_sends_nothing():
    robot, planner = PointRobot(), TracePlanner()
    report = run_loop(
        robot, planner, shield(), LoopConfig(rate_hz=RATE, max_steps=10, dry_run=True), **steady()
    )
    assert robot.sent == [] and report.sent == 0
    assert np.isfinite(report.actions).all() and report.actions.shape == (10, 3)


def test_planner_failure_stops_the_loop():
    class Broken(TracePlanner):
        def predict_chunk(self, obs, goal):
            raise RuntimeError("boom")

    report = run_loop(PointRobot(), Broken(), shield(), LoopConfig(rate_hz=RATE, max_steps=50))
    assert report.status == "inference_error" and "boom" in report.error
    assert report.exit_code == 4


# ---------------------------------------------------------------------- uvdiff-deploy on MuJoCo
@pytest.fixture(scope="module")
def sim_checkpoint(tmp_path_factory):
    from sim.testing import noise_checkpoint

    return noise_checkpoint(tmp_path_factory.mktemp("deploy"))


def compose(*overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("configs", version_base="1.3"):
        return hydra_compose("deploy", overrides=list(overrides))


def test_uvdiff_deploy_on_the_simulated_arm(sim_checkpoint, tmp_path, capsys):
    import json

    from real.deploy_cli import run

    cfg = compose(
        f"checkpoint={sim_checkpoint}", "robot=sim", "env=lift", "max_steps=25", f"out={tmp_path}"
    )
    assert run(cfg) == 0
    text = capsys.readouterr().out
    report = json.loads((tmp_path / "deploy_report.json").read_text())
    n = report["steps"]  # a stall of the shared CPU skips ticks rather than bursting
    assert f"deploy: max_steps after {n} steps" in text and "p50/p95 ms" in text
    assert n + report["skipped"] == 25 and n >= 20 and report["exit_code"] == 0
    assert report["sent"] == n and report["achieved_hz"] == pytest.approx(20, rel=0.25)
    for k in ("observe", "infer", "send", "obs_age"):
        assert report["timings_ms"][k]["p95"] >= report["timings_ms"][k]["p50"] > 0
    actions = np.load(tmp_path / "actions.npy")
    assert actions.shape == (25, 7)
    actions = actions[np.isfinite(actions).all(1)]  # skipped ticks are NaN rows
    assert len(actions) == n
    # the shield held every command to the configured caps (noise policy: it had work to do)
    assert np.abs(actions[:, :3]).max() <= 1 and np.abs(actions[:, 3:6]).max() <= 0.5
    assert report["shield"]["interventions"].get("max_delta", 0) > 0


def test_uvdiff_deploy_dry_run_flag_sends_nothing(sim_checkpoint, tmp_path, capsys, monkeypatch):
    import json

    from real.deploy_cli import main

    argv = [
        "uvdiff-deploy",
        f"checkpoint={sim_checkpoint}",
        "robot=sim",
        "max_steps=10",
        f"out={tmp_path}",
        "lost_after=0.2",  # longer than that at 20 Hz: an arm at rest must not look lost
        "--dry-run",
    ]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 0
    report = json.loads((tmp_path / "deploy_report.json").read_text())
    assert report["sent"] == 0 and report["dry_run"] and report["steps"] + report["skipped"] == 10
    # nothing sent, the simulator never stepped: an arm at rest, not a lost one
    assert (
        report["status"] == "max_steps"
        and "stale_observation" not in report["shield"]["interventions"]
    )
    assert "(dry run)" in capsys.readouterr().out


def test_uvdiff_deploy_names_a_bad_config(sim_checkpoint, capsys):
    from real.deploy_cli import run

    cfg = compose(
        f"checkpoint={sim_checkpoint}",
        "robot=sim",
        "robot.action.dim=6",
        "robot.action.low=null",
        "robot.action.high=null",
        "robot.action.gripper=[5]",
        "robot.shield.max_delta=null",
    )
    assert run(cfg) == 2
    assert "7-D actions" in capsys.readouterr().err


# ---------------------------------------------------------------------- goal-conditioned deploy
def demo_with_subgoals(root, T=40, subgoals=(12, 25, 39)):
    """A sim-shaped demo whose eef_pos walks a line; subgoals.json as the decomposer writes."""
    import json

    from demos import DatasetInfo, DemoFolder, Episode
    from sim.testing import SIM_STATE

    info = DatasetInfo(fps=20, action_dim=7, state=SIM_STATE, robot="panda", action_kind="delta_ee")
    folder = DemoFolder.create(root, info)
    t = np.arange(T, dtype=np.float32)[:, None]
    state = {k: np.zeros((T, d), np.float32) for k, d in SIM_STATE.items()}
    if T <= 40:  # a line: x = t / 10
        state["eef_pos"] = np.hstack([t / 10, 0 * t, 0 * t + 1]).astype(np.float32)
    else:  # out along x and back (UVD finds the turn), drifting along y
        u = t / (T - 1)
        state["eef_pos"] = np.hstack([1 - np.abs(2 * u - 1), 0.2 * u, 0 * u + 1]).astype(np.float32)
    eid = folder.add_episode(Episode(action=np.zeros((T, 7), np.float32), state=state))
    (folder.episode_dir(eid) / "subgoals.json").write_text(json.dumps({"subgoals": list(subgoals)}))
    return folder, state


class ReplayRobot(PointRobot):
    """Replays a demo's states: each command moves one demo step on."""

    def __init__(self, state):
        super().__init__()
        self.rows = state

    def observe(self):
        with self.lock:
            i = min(self.seq, len(self.rows["eef_pos"]) - 1)
            return Observation(self.stamp, {k: v[i] for k, v in self.rows.items()}, seq=self.seq)


class GoalPlanner(TracePlanner):
    def __init__(self):
        super().__init__(horizon=4, n_action_steps=1)
        self.goals = []

    def observe(self, obs):
        self.last = {**obs, "tick": np.float32([0])}

    def predict_chunk(self, obs, goal):
        self.goals.append(float(goal["eef_pos"][0]))
        return np.zeros((4, 7))


def demo_goal(folder, keys, relay=DEFAULT_RELAY, goal="final", stats=None):
    """What ``uvdiff-deploy`` builds for a policy with these goal keys and goal mode."""
    from types import SimpleNamespace

    from real.deploy import task_goal
    from sim.testing import SIM_STATE

    config = SimpleNamespace(resolved_goal_keys=keys, state=SIM_STATE, goal=goal, cameras={},
                             backbone=None)  # fmt: skip
    return task_goal(None, config, folder.root, 0, relay, stats=stats or {})


def test_subgoal_relay_follows_the_demo(tmp_path):
    folder, state = demo_with_subgoals(tmp_path / "demo")
    keys = ["eef_pos", "object"]
    goal = demo_goal(folder, keys)
    assert isinstance(goal, RelayGoal) and len(goal.goals) == 3
    assert isinstance(demo_goal(folder, keys, relay=None), FixedGoal)
    # every relay rule deploys, nearest included (it follows the demo's frames)
    nearest = demo_goal(folder, keys, RelaySettings(rule="nearest"))
    assert nearest.relay.rule == "nearest" and len(nearest.relay.train) == len(state["eef_pos"])
    planner = GoalPlanner()
    shield = Shield(ShieldSpec(), ActionSpec("delta_ee", 7, gripper=(6,)), 1 / RATE)
    report = run_loop(
        ReplayRobot(state), planner, shield, LoopConfig(rate_hz=RATE, max_steps=80), goal=goal
    )
    # the robot replays the demo, so the relay moves on near the demo's subgoal frames
    assert len(report.subgoal_switches) == 2, report.subgoal_switches
    for tick, frame in zip(report.subgoal_switches, (12, 25), strict=True):
        assert abs(tick - frame) <= 4, report.subgoal_switches
    assert report.status == "goal_reached" and report.subgoal == 2
    # the policy was asked for subgoal 0, then 1, then 2 (eef x = frame / 10), never backwards
    seen = sorted(set(planner.goals))
    assert seen == pytest.approx([1.2, 2.5, 3.9]) and planner.goals == sorted(planner.goals)


def test_goal_conditioned_deploy_needs_a_demo(tmp_path, capsys, one_torch_thread):
    from demos import DatasetInfo, DemoFolder, Episode  # noqa: F401
    from real.deploy_cli import run
    from sim.testing import TINY_MLP, train_checkpoint

    folder, _ = demo_with_subgoals(tmp_path / "demo")
    ckpt = train_checkpoint(folder.root, tmp_path / "run", "final", policy=TINY_MLP, steps=2)
    cfg = compose(f"checkpoint={ckpt}", "robot=sim", "max_steps=10")
    assert run(cfg) == 2
    assert "goal-conditioned" in capsys.readouterr().err
    cfg = compose(
        f"checkpoint={ckpt}",
        "robot=sim",
        "max_steps=10",
        f"demo={folder.root}",
        f"out={tmp_path / 'out'}",
    )
    assert run(cfg) == 0
    assert "subgoal 0 at the end" in capsys.readouterr().out


def test_relay_embedding_scales_keys_and_uvd_decomposes_without_subgoals(tmp_path):
    stats = {"eef_pos": {"min": [0, 0, 0], "max": [4, 1, 1]}}
    emb = state_embedder(["eef_pos", "object"], stats)
    v = emb({"eef_pos": np.array([2.0, 1.0, 0.0]), "object": np.arange(10.0)})
    np.testing.assert_allclose(v[:3], [0, 1, -1])  # scaled to [-1, 1]
    np.testing.assert_allclose(v[3:], np.arange(10.0))  # no stats: as it is
    # a demo without subgoals.json: UVD runs on it for a goal=uvd policy, else the last frame
    folder, state = demo_with_subgoals(tmp_path / "demo", T=120)
    (folder.episode_dir(0) / "subgoals.json").unlink()
    fixed = demo_goal(folder, ["eef_pos"])
    np.testing.assert_allclose(fixed({})["eef_pos"], state["eef_pos"][-1])
    relay = demo_goal(folder, ["eef_pos"], RelaySettings(min_interval_s=0.5), "uvd", stats)
    assert isinstance(relay, RelayGoal) and len(relay.goals) == 2
    np.testing.assert_allclose(relay.goals[0]["eef_pos"][0], 1.0, atol=0.02)  # the turn
    np.testing.assert_allclose(relay.goals[-1]["eef_pos"], state["eef_pos"][-1])
