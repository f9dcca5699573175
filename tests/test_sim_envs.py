"""sim.make_env on real MuJoCo: every task resets and steps, frames are upright, stages and
success mean what the docs say, bad input is refused with a useful message."""

import os
import subprocess
import sys
import textwrap

import mujoco
import numpy as np
import pytest

from demos import DatasetInfo
from sim import ENVS, SimError, make_env
from sim.envs import rot6d
from sim.experts import Expert
from sim.orders import ORDER_SPLITS, ORDERS, parse_order
from sim.rollout import expert_seed

NAMES = ["lift", "can", "square", "stack", "pickplace4", "arrange"]


@pytest.fixture(scope="module")
def envs():
    built = {name: make_env(name) for name in NAMES}
    yield built
    for env in built.values():
        env.close()


def test_registry_holds_the_six_tasks():
    assert list(ENVS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_env_resets_and_steps(envs, name):
    env = envs[name]
    obs, info = env.reset(seed=3)
    assert set(obs) == set(env.spec.keys) == {"eef_pos", "eef_quat", "gripper_qpos", "object"}
    for key, dim in env.spec.state.items():
        assert obs[key].shape == (dim,) and obs[key].dtype == np.float32, key
    assert info["stage"] == 0 and info["success"] is False and info["task"]
    start = obs["eef_pos"].copy()
    for _ in range(5):
        obs, reward, terminated, truncated, info = env.step(np.array([0, 0, 1.0, 0, 0, 0, -1]))
    assert obs["eef_pos"][2] > start[2] + 0.01  # "up" moved the gripper up
    assert not terminated and not truncated and info["step"] == 5
    # the same seed gives the same start, another seed another one
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=3)
    c, _ = env.reset(seed=4)
    np.testing.assert_array_equal(a["object"], b["object"])
    assert not np.allclose(a["object"], c["object"])


def test_the_model_is_the_same_in_every_env_whatever_its_seed(envs):
    """robosuite draws Lift's cube size when it builds the model; an env built from another
    seed (or in another worker process) must still have the same cube, or the same episode
    seed gives different demos in different processes."""
    with make_env("lift", seed=12345) as other:
        np.testing.assert_array_equal(other.raw.cube.size, envs["lift"].raw.cube.size)
        a, _ = other.reset(seed=3)
    b, _ = envs["lift"].reset(seed=3)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_spec_is_a_valid_dataset_json(envs):
    env = envs["can"]
    info = env.spec.dataset_info(tasks=["put the can in its bin"])
    back = DatasetInfo.from_json(info.to_json())
    assert back.state == {"eef_pos": 3, "eef_quat": 4, "gripper_qpos": 2, "object": 18}
    assert back.action_dim == 7 and back.fps == 20.0 and back.action_kind == "delta_ee"


def test_rot6d_is_the_rotation_matrix_for_either_sign_of_the_quaternion():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        x, y, z, w = q
        m = np.zeros(9)
        mujoco.mju_quat2Mat(m, np.array([w, x, y, z]))  # MuJoCo's own, (w, x, y, z) order
        expected = m.reshape(3, 3)[:, :2].T.ravel()
        np.testing.assert_allclose(rot6d(q), expected, atol=1e-12)
        np.testing.assert_allclose(rot6d(-q), expected, atol=1e-12)


@pytest.mark.parametrize("name, obj", [("can", "Can"), ("square", "SquareNut")])
def test_object_state_is_where_the_object_is_from_the_first_step_and_never_jumps(envs, name, obj):
    """robosuite keeps quaternions with w >= 0; these objects rest near w = 0, so their
    quaternions flipped sign every few steps; and observation 0 put them at the origin."""
    env = envs[name]
    where = env.object_slices
    assert max(w.stop for w in where.values()) == env.spec.state["object"]
    obs, _ = env.reset(seed=5)
    expert = Expert(name)
    expert.reset(env, expert_seed(5))
    trace = [obs["object"]]
    for _ in range(120):  # approach, grasp, lift; obs lag the sim by one physics substep
        body = env.raw.obj_body_id[obj]
        pos, rot = env.raw.sim.data.body_xpos[body], env.raw.sim.data.body_xmat[body]
        np.testing.assert_allclose(obs["object"][where[f"{obj}_pos"]], pos, atol=0.02)
        rot6 = rot.reshape(3, 3)[:, :2].T.ravel()
        np.testing.assert_allclose(obs["object"][where[f"{obj}_quat"]], rot6, atol=0.02)
        obs, *_ = env.step(expert.act())
        trace.append(obs["object"])
    steps = np.abs(np.diff(np.stack(trace), axis=0)).max(axis=0)
    assert steps.max() < 0.3, f"largest step-to-step change {steps.max():.2f} at {steps.argmax()}"


def test_unknown_env_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown env 'lfit'; valid envs: lift, can, square"):
        make_env("lfit")


def test_bad_action_and_bad_camera_are_refused(envs):
    env = envs["lift"]
    env.reset(seed=0)
    with pytest.raises(SimError, match="7 finite numbers"):
        env.step(np.array([0, 0, np.nan, 0, 0, 0, 0]))
    with pytest.raises(SimError, match="7 finite numbers"):
        env.step(np.zeros(6))
    with pytest.raises(SimError, match="no camera \\['frontvew'\\]; cameras: .*agentview"):
        make_env("lift", cameras=("frontvew",))
    with pytest.raises(SimError, match="unknown reset options \\['order'\\]; accepted: none"):
        env.reset(seed=0, options={"order": 3})


def test_truncated_at_horizon():
    with make_env("stack", horizon=3) as env:
        env.reset(seed=0)
        flags = [env.step(np.zeros(7))[3] for _ in range(4)]
    assert flags == [False, False, True, True]


def _project(env, point, camera, size):
    """Pixel (column, row) of a world point in an upright image, from the camera's pose."""
    m, d = env.raw.sim.model._model, env.raw.sim.data._data
    cam = env.raw.sim.model.camera_name2id(camera)
    local = d.cam_xmat[cam].reshape(3, 3).T @ (point - d.cam_xpos[cam])
    f = (size / 2) / np.tan(np.deg2rad(m.cam_fovy[cam]) / 2)
    return size / 2 + f * local[0] / -local[2], size / 2 - f * local[1] / -local[2]


@pytest.mark.parametrize("fast", [True, False])
def test_frames_are_upright_where_the_geometry_says(fast):
    """The red cube, put near the front right of the table, shows where the camera's pose
    projects it: low in the frame (near the camera) and right. A flipped or mirrored frame
    puts it 40 px away."""
    size = 84
    with make_env("lift", cameras=("agentview",), image_size=(size, size), fast_render=fast) as env:
        obs, _ = env.reset(seed=0)
        frame = obs["agentview"]
        assert frame.shape == (size, size, 3) and frame.dtype == np.uint8
        raw = env.raw
        m, d = raw.sim.model._model, raw.sim.data._data
        adr = m.jnt_qposadr[raw.sim.model.joint_name2id(raw.cube.joints[0])]
        d.qpos[adr : adr + 7] = [0.15, 0.12, 0.83, 1, 0, 0, 0]
        mujoco.mj_forward(m, d)
        frame = env.render("agentview")
        cube = d.xpos[raw.sim.model.body_name2id(raw.cube.root_body)]
        u, v = _project(env, cube, "agentview", size)
    rgb = frame.astype(int)
    red = rgb[..., 0] - np.maximum(rgb[..., 1], rgb[..., 2]) > 60
    rows, cols = np.nonzero(red)
    assert red.sum() > 10
    assert v > size * 0.65 and u > size * 0.65  # the check can tell up from down
    assert abs(rows.mean() - v) < 4 and abs(cols.mean() - u) < 4
    # the table (bright, low saturation) fills the lower half; the top rows are not table
    table = (rgb.min(axis=2) > 170) & (rgb.max(axis=2) - rgb.min(axis=2) < 30)
    assert table[size // 2 :].mean() > 0.8 > table[: size // 8].mean()


def test_fast_render_changes_the_picture_not_the_scene():
    frames = {}
    for fast in (True, False):
        with make_env("lift", cameras=("agentview",), image_size=(64, 64), fast_render=fast) as e:
            frames[fast] = e.reset(seed=1)[0]["agentview"].astype(int)
    diff = np.abs(frames[True] - frames[False])
    assert diff.max() > 30  # shadows and multisampling are gone ...
    assert diff.mean() < 12  # ... the scene is the same


def _stage_trace(env, targets):
    """Drive the gripper through (target position, gripper, steps) waypoints on privileged
    cube state; return (stage, success, terminated, cube height) after every step."""
    trace = []
    site = env.raw.robots[0].eef_site_id["right"]
    for target, grip, steps in targets:
        for _ in range(steps):
            cube = env.raw.sim.data.body_xpos[env.raw.cube_body_id]
            goal = target(cube)
            pos = env.raw.sim.data.site_xpos[site]
            action = np.zeros(7)
            action[:3] = np.clip(10 * (goal - pos), -1, 1)
            action[6] = grip
            _, _, terminated, _, info = env.step(action)
            trace.append((info["stage"], info["success"], terminated, float(cube[2])))
    return trace


def test_lift_stages_and_success_on_a_scripted_run(envs):
    env = envs["lift"]
    env.reset(seed=5)
    table = env.raw.model.mujoco_arena.table_offset[2]
    above = lambda c: c + [0, 0, 0.08]  # noqa: E731
    at = lambda c: c + [0, 0, -0.005]  # noqa: E731
    trace = _stage_trace(env, [(above, -1, 30), (at, -1, 25), (at, 1, 12)])
    assert {s for s, *_ in trace} == {0, 1}  # grasped, not yet lifted
    assert not any(succ for _, succ, *_ in trace)
    trace += _stage_trace(env, [(lambda c: c + [0, 0, 0.15], 1, 40)])
    stages = [s for s, *_ in trace]
    assert stages == sorted(stages) and stages[-1] == 2 and env.stage_names[2] == "lifted"
    first_success = next(i for i, (_, succ, *_) in enumerate(trace) if succ)
    assert trace[first_success][3] > table + 0.04 >= trace[first_success - 1][3] - 0.005
    assert all(term == succ for _, succ, term, _ in trace)  # terminated means success
    # let go: the cube falls, success ends, the stage stays (milestones are latched)
    here = env.raw.sim.data.site_xpos[env.raw.robots[0].eef_site_id["right"]].copy()
    trace = _stage_trace(env, [(lambda c: here, -1, 30)])
    assert trace[-1][1] is False and trace[-1][0] == 2 and trace[-1][3] < table + 0.04


def _put_in_bin(env, name):
    """Teleport a PickPlace object onto the middle of its own bin."""
    raw = env.raw
    i = ["milk", "bread", "cereal", "can"].index(name)
    obj = raw.objects[i]
    m, d = raw.sim.model._model, raw.sim.data._data
    adr = m.jnt_qposadr[raw.sim.model.joint_name2id(obj.joints[0])]
    d.qpos[adr : adr + 3] = raw.target_bin_placements[i] + [0, 0, 0.1]
    d.qvel[m.jnt_dofadr[raw.sim.model.joint_name2id(obj.joints[0])] :][:6] = 0
    mujoco.mj_forward(m, d)


def test_pickplace4_counts_placements_in_the_given_order_only(envs):
    env = envs["pickplace4"]
    _, info = env.reset(seed=0, options={"order": ("bread", "can", "milk", "cereal")})
    assert info["order"] == ("bread", "can", "milk", "cereal") and "bread, can" in info["task"]
    hold = np.zeros(7)
    _put_in_bin(env, "bread")
    for _ in range(15):
        info = env.step(hold)[4]
    assert info["stage"] == 1 and not info["success"]
    _put_in_bin(env, "milk")  # out of turn: the order is broken for good
    for _ in range(15):
        info = env.step(hold)[4]
    for name in ("can", "cereal"):
        _put_in_bin(env, name)
        for _ in range(15):
            info = env.step(hold)[4]
    assert env.raw.objects_in_bins.all()  # every object in its bin ...
    assert info["stage"] == 1 and not info["success"]  # ... but not in the given order
    # the same placements in the given order succeed
    _, info = env.reset(seed=0, options={"order": "bread,can,milk,cereal"})
    for expected, name in enumerate(("bread", "can", "milk", "cereal"), start=1):
        _put_in_bin(env, name)
        for _ in range(15):
            _, _, terminated, _, info = env.step(hold)
        assert info["stage"] == expected
    assert info["success"] and terminated


def test_orders_and_splits():
    assert len(ORDERS) == 24 and len(set(ORDERS)) == 24
    assert parse_order(5) == ORDERS[5] and parse_order("5") == ORDERS[5]
    assert len(ORDER_SPLITS["train"]) == 16 and len(ORDER_SPLITS["heldout"]) == 8
    assert not set(ORDER_SPLITS["train"]) & set(ORDER_SPLITS["heldout"])
    with pytest.raises(SimError, match="must name each of milk, bread, cereal, can once"):
        parse_order(["milk", "milk", "can", "bread"])
    with pytest.raises(SimError, match="not in 0..23"):
        parse_order(24)


RENDER_PROBE = textwrap.dedent(
    """
    from sim import make_env
    make_env("lift", cameras=("agentview",))
    """
)


@pytest.mark.parametrize("backend", ["glfw", "osmesa"])
def test_a_renderer_that_cannot_start_says_which_backend_and_what_to_install(backend):
    drop = ("DISPLAY", "WAYLAND_DISPLAY", "PYOPENGL_PLATFORM")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["MUJOCO_GL"] = backend
    result = subprocess.run(
        [sys.executable, "-c", RENDER_PROBE], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("sim.errors.")]
    assert errors and errors[-1].startswith("sim.errors.RendererError:"), result.stderr[-2000:]
    assert f"MUJOCO_GL={backend}" in errors[-1] and "apt-get install" in errors[-1]
    assert "Exception ignored" not in result.stderr


def test_scene_variant_moves_the_fixed_cameras_and_dims_the_lights_only():
    """A camera bumped 6 cm to the side shows the cube where the moved camera's pose projects
    it (a few pixels off its usual place), after resets too; the wrist camera, the physics and
    the state are untouched; half the light gives a darker picture of the same scene."""
    from sim.scene import SceneVariant

    size, cams = 84, ("agentview", "robot0_eye_in_hand")
    looks = {
        "as built": SceneVariant(),
        "moved": SceneVariant(camera_shift=(0.0, 0.06, 0.0)),
        "dim": SceneVariant(light_scale=0.5),
    }
    seen = {}
    for name, scene in looks.items():
        with make_env("lift", cameras=cams, image_size=(size, size), scene=scene) as env:
            env.reset(seed=5)
            obs, _ = env.reset(seed=3)  # the variant holds through resets
            cube = env.raw.sim.data.body_xpos[env.raw.cube_body_id].copy()
            seen[name] = (obs, _project(env, cube, "agentview", size))
    base, moved, dim = (seen[k][0] for k in looks)
    (u0, _), (u1, v1) = seen["as built"][1], seen["moved"][1]
    assert abs(u1 - u0) > 4  # the cube moved in the picture ...
    rgb = moved["agentview"].astype(int)
    rows, cols = np.nonzero(rgb[..., 0] - np.maximum(rgb[..., 1], rgb[..., 2]) > 60)
    assert abs(cols.mean() - u1) < 4 and abs(rows.mean() - v1) < 4  # ... where geometry says
    np.testing.assert_array_equal(moved["robot0_eye_in_hand"], base["robot0_eye_in_hand"])
    for key in ("eef_pos", "object"):
        np.testing.assert_array_equal(moved[key], base[key])
        np.testing.assert_array_equal(dim[key], base[key])
    assert dim["agentview"].mean() < 0.8 * base["agentview"].mean()
    with pytest.raises(SimError, match="light_scale must be >= 0"):
        SceneVariant(light_scale=-1)
    with pytest.raises(SimError, match="camera_shift must be 3 finite metres"):
        SceneVariant(camera_shift=(0.1, 0.2))
