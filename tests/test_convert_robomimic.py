"""robomimic HDF5 -> demo folder: exact arrays, upright frames, env_args mapping, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from demos import DemoFolder, DemoFolderError, validate
from demos.convert.cli import main as convert_cli
from demos.convert.robomimic import convert_robomimic

T0, H, W, S = 12, 48, 64, 9  # steps of demo 0 (demo i has T0 + i), image size, sim-state dim
OSC_DELTA = {"type": "OSC_POSE", "control_delta": True, "kp": 150}
TOP, BOTTOM = (200, 40, 40), (30, 60, 190)  # agentview: red upper half, blue lower half


def env_args(controller=OSC_DELTA, **kwargs) -> str:
    env_kwargs = {"control_freq": 20, "robots": ["Panda"], "controller_configs": controller}
    return json.dumps({"env_name": "Lift", "env_type": 1, "env_kwargs": {**env_kwargs, **kwargs}})


def agentview(i: int, T: int) -> np.ndarray:
    """Two flat halves whose green channel brightens with the step (to spot frame order)."""
    img = np.zeros((T, H, W, 3), np.uint8)
    img[:, : H // 2] = TOP
    img[:, H // 2 :] = BOTTOM
    img[:, :, :, 1] = (40 + 5 * np.arange(T) + 3 * i)[:, None, None]
    return img


def source_demo(i: int) -> dict[str, np.ndarray]:
    """The known contents of demo_<i>; actions[:, 0] holds i so order is visible."""
    rng = np.random.default_rng(i)
    T = T0 + i
    actions = rng.uniform(-1, 1, (T, 7))
    actions[:, 0] = i
    rewards = np.zeros(T)
    rewards[-1] = float(i != 1)  # demo_1 never reaches the goal
    return {
        "actions": actions,
        "obs/robot0_eef_pos": rng.normal(size=(T, 3)),
        "obs/robot0_joint_pos": rng.normal(size=(T, 7)),
        "obs/robot0_gripper": rng.normal(size=T),  # 1-D: becomes (T, 1)
        "obs/agentview_image": agentview(i, T),
        "obs/robot0_eye_in_hand_image": np.full((T, H, W, 3), 20 * i + 50, np.uint8),
        "states": rng.normal(size=(T, S)),
        "rewards": rewards,
        "dones": rewards.copy(),
    }


def write_h5(path: Path, indices=(0, 1, 2), *, args: str | None = None, masks=None) -> Path:
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = env_args() if args is None else args
        data.attrs["total"] = sum(T0 + i for i in indices)
        for i in indices:
            demo = data.create_group(f"demo_{i}")
            for key, value in source_demo(i).items():
                demo.create_dataset(key, data=value)
            demo.attrs["num_samples"] = T0 + i
        for key, names in (masks or {}).items():
            f.create_dataset(f"mask/{key}", data=np.array([n.encode() for n in names]))
    return path


@pytest.fixture
def h5(tmp_path) -> Path:
    return write_h5(tmp_path / "lift.hdf5")


def convert(src: Path, out: Path, **kw) -> DemoFolder:
    return convert_robomimic(src, out, progress=False, **kw)


def half_means(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour of the upper and lower half, away from the edge between them."""
    return frames[:, 4 : H // 2 - 4].mean(axis=(0, 1, 2)), frames[:, H // 2 + 4 : -4].mean(
        axis=(0, 1, 2)
    )


def test_converted_folder_is_valid_with_schema_from_env_args(h5, tmp_path):
    folder = convert(h5, tmp_path / "out")
    report = validate(tmp_path / "out")
    assert report.problems == []
    assert report.episodes == 3 and report.frames == 3 * T0 + 3
    info = folder.info
    assert (info.fps, info.robot, info.action_kind, info.tasks) == (
        20.0,
        "panda",
        "delta_ee",
        ["Lift"],
    )
    assert info.action_dim == 7
    assert info.state == {
        "robot0_eef_pos": 3,
        "robot0_joint_pos": 7,
        "robot0_gripper": 1,
        "sim_state": S,
    }
    assert info.cameras == {"agentview": (H, W), "robot0_eye_in_hand": (H, W)}


def test_arrays_equal_the_source(h5, tmp_path):
    folder = convert(h5, tmp_path / "out")
    for i in range(3):
        src, ep = source_demo(i), folder.read_episode(i, frames=False)
        assert ep.action.dtype == np.float32
        np.testing.assert_array_equal(ep.action, src["actions"].astype(np.float32))
        for key in ("robot0_eef_pos", "robot0_joint_pos"):
            np.testing.assert_array_equal(ep.state[key], src[f"obs/{key}"].astype(np.float32))
        gripper = src["obs/robot0_gripper"].astype(np.float32)[:, None]
        np.testing.assert_array_equal(ep.state["robot0_gripper"], gripper)
        np.testing.assert_array_equal(ep.state["sim_state"], src["states"].astype(np.float32))
        np.testing.assert_allclose(ep.timestamp, np.arange(T0 + i) / 20)
        assert ep.task == "Lift"
    successes = [folder.read_episode(i, frames=False).success for i in range(3)]
    assert successes == [True, False, True]


def test_frames_are_upright_and_in_order(h5, tmp_path):
    folder = convert(h5, tmp_path / "out")
    for i in range(3):
        frames = folder.read_frames(i, "agentview")
        assert frames.shape == (T0 + i, H, W, 3)
        top, bottom = half_means(frames)
        assert np.abs(top[[0, 2]] - np.array(TOP)[[0, 2]]).max() < 8
        assert np.abs(bottom[[0, 2]] - np.array(BOTTOM)[[0, 2]]).max() < 8
        green = frames[:, 4:-4, 4:-4, 1].mean(axis=(1, 2))
        np.testing.assert_allclose(green, 40 + 5 * np.arange(T0 + i) + 3 * i, atol=6)
        wrist = folder.read_frames(i, "robot0_eye_in_hand")
        assert abs(wrist.mean() - (20 * i + 50)) < 4


def test_flip_images_turns_old_files_upright(h5, tmp_path):
    frames = convert(h5, tmp_path / "out", flip_images=True).read_frames(0, "agentview")
    top, bottom = half_means(frames)
    assert abs(top[0] - BOTTOM[0]) < 8 and abs(top[2] - BOTTOM[2]) < 8
    assert abs(bottom[0] - TOP[0]) < 8 and abs(bottom[2] - TOP[2]) < 8


def test_demos_in_integer_order_with_gaps(tmp_path):
    src = write_h5(tmp_path / "gaps.hdf5", indices=(11, 2, 10, 0, 9))
    folder = convert(src, tmp_path / "out", keep_sim_states=False)
    order = [folder.read_episode(e, frames=False).action[0, 0] for e in folder.episode_ids]
    assert order == [0, 2, 9, 10, 11]
    assert "sim_state" not in folder.info.state


@pytest.mark.parametrize(
    ("controller", "kind"),
    [
        ({"type": "OSC_POSE", "control_delta": True}, "delta_ee"),
        ({"type": "OSC_POSE", "control_delta": False}, "absolute_ee"),
        ({"type": "JOINT_POSITION"}, "other"),
        (
            {
                "type": "BASIC",
                "body_parts": {"arms": {"right": {"type": "OSC_POSE", "input_type": "delta"}}},
            },
            "delta_ee",
        ),
        (
            {
                "type": "BASIC",
                "body_parts": {"right": {"type": "OSC_POSE", "input_type": "absolute"}},
            },
            "absolute_ee",
        ),
        (
            {"type": "BASIC", "body_parts": {"arms": {"right": {"type": "JOINT_POSITION"}}}},
            "other",
        ),
    ],
)
def test_action_kind_from_controller(tmp_path, controller, kind):
    args = env_args(controller, control_freq=10, robots=["Sawyer"])
    info = convert(write_h5(tmp_path / "c.hdf5", (0,), args=args), tmp_path / "out").info
    assert (info.action_kind, info.fps, info.robot) == (kind, 10.0, "sawyer")


def test_missing_control_freq_means_20(tmp_path):
    args = json.dumps({"env_name": "Can", "env_kwargs": {"robots": "UR5e"}})
    info = convert(write_h5(tmp_path / "c.hdf5", (0,), args=args), tmp_path / "out").info
    assert (info.fps, info.robot, info.tasks, info.action_kind) == (20.0, "ur5e", ["Can"], "other")


def test_filter_key_converts_only_listed_demos(tmp_path):
    masks = {"train": ["demo_10", "demo_0"], "valid": ["demo_3"]}
    src = write_h5(tmp_path / "m.hdf5", (0, 3, 10), masks=masks)
    folder = convert(src, tmp_path / "out", filter_key="train")
    assert [folder.read_episode(e, frames=False).action[0, 0] for e in folder.episode_ids] == [
        0,
        10,
    ]
    assert validate(tmp_path / "out").ok


def test_depth_maps_are_left_out_with_a_warning(h5, tmp_path):
    with h5py.File(h5, "r+") as f:
        for i in range(3):
            f[f"data/demo_{i}/obs/agentview_depth"] = np.ones((T0 + i, H, W, 1), np.float32)
    with pytest.warns(UserWarning, match="agentview_depth"):
        folder = convert(h5, tmp_path / "out")
    assert "agentview_depth" not in folder.info.state and validate(tmp_path / "out").ok


def test_progress_bar_counts_demos(h5, tmp_path, capsys):
    convert_robomimic(h5, tmp_path / "out", progress=True)
    assert "3/3" in capsys.readouterr().err


# ---------------------------------------------------------------------------- bad input
def _delete(key):
    def edit(f):
        del f[key]

    return edit


def _replace(key, value):
    def edit(f):
        del f[key]
        f[key] = value

    return edit


def _no_demos(f):
    for name in list(f["data"]):
        del f[f"data/{name}"]


def _nan_action(f):
    a = f["data/demo_2/actions"][()]
    a[5, 3] = np.nan
    _replace("data/demo_2/actions", a)(f)


def _bad_env_args(f):
    f["data"].attrs["env_args"] = '{"env_name": "Lift", "env_kwargs": {'


BAD = {
    "no data group": (_delete("data"), ["/data", "missing"]),
    "no demos": (_no_demos, ["/data", "no demos"]),
    "demo without actions": (_delete("data/demo_1/actions"), ["/data/demo_1/actions", "missing"]),
    "obs shorter than actions": (
        _replace("data/demo_1/obs/robot0_eef_pos", np.zeros((T0, 3))),
        ["/data/demo_1/obs/robot0_eef_pos", f"{T0 + 1} rows"],
    ),
    "obs key missing in one demo": (
        _delete("data/demo_2/obs/robot0_joint_pos"),
        ["/data/demo_2", "demo_0", "robot0_joint_pos"],
    ),
    "obs dim differs": (
        _replace("data/demo_2/obs/robot0_eef_pos", np.zeros((T0 + 2, 4))),
        ["/data/demo_2/obs/robot0_eef_pos", "(4,)", "(3,)"],
    ),
    "image not uint8 rgb": (
        _replace("data/demo_0/obs/agentview_image", np.zeros((T0, H, W), np.float32)),
        ["/data/demo_0/obs/agentview_image", "uint8"],
    ),
    "nan in actions": (_nan_action, ["/data/demo_2/actions", "row 5", "nan"]),
    "malformed env_args": (_bad_env_args, ["/data", "env_args", "not valid JSON"]),
    "num_samples wrong": (
        lambda f: f["data/demo_1"].attrs.__setitem__("num_samples", 99),
        ["/data/demo_1", "num_samples", "99"],
    ),
}


def assert_fails_cleanly(src: Path, out: Path, needles: list[str], **kw) -> None:
    with pytest.raises(DemoFolderError) as e:
        convert(src, out, **kw)
    msg = str(e.value)
    for needle in [str(src), *needles]:
        assert needle in msg
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")] == []


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_raises_naming_file_and_path(h5, tmp_path, case):
    edit, needles = BAD[case]
    with h5py.File(h5, "r+") as f:
        edit(f)
    assert_fails_cleanly(h5, tmp_path / "out", needles)


def test_not_an_hdf5_file(tmp_path):
    src = tmp_path / "fake.hdf5"
    src.write_bytes(b"not hdf5 at all\n" * 100)
    assert_fails_cleanly(src, tmp_path / "out", ["not an HDF5 file"])


def test_unknown_filter_key_lists_the_known_ones(tmp_path):
    src = write_h5(tmp_path / "m.hdf5", masks={"train": ["demo_0"]})
    assert_fails_cleanly(src, tmp_path / "out", ["/mask/valid", "train"], filter_key="valid")


def test_every_fault_is_reported_at_once(h5, tmp_path):
    with h5py.File(h5, "r+") as f:
        _delete("data/demo_0/actions")(f)
        _nan_action(f)
    with pytest.raises(DemoFolderError) as e:
        convert(h5, tmp_path / "out")
    assert [p.path for p in e.value.problems] == [
        f"{h5}:/data/demo_0/actions",
        f"{h5}:/data/demo_2/actions",
    ]


def test_existing_output_is_never_touched(h5, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        convert(h5, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mine.txt"]


def test_cli_exit_codes(h5, tmp_path, capsys):
    assert convert_cli([str(h5), str(tmp_path / "out"), "--no-progress"]) == 0
    assert validate(tmp_path / "out").ok
    broken = tmp_path / "broken.hdf5"
    broken.write_bytes(h5.read_bytes()[:4096])  # truncated
    assert convert_cli([str(broken), str(tmp_path / "out2"), "--no-progress"]) == 1
    assert str(broken) in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()
