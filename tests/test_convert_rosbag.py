"""uvdiff-convert from ROS bags: a rosbag1 written by Debian's own rosbag library, rosbag2
(sqlite3) and MCAP written with rosbags in ROS 2 CDR; row alignment, errors, staging."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rosrig import HERE
from rosrig import have_ros as _have_ros

from demos import DemoFolder, validate
from demos.convert.cli import main as convert_main
from demos.convert.rosbag import DEFAULT_TOPICS, convert_rosbag
from demos.errors import DemoFolderError

TOPICS = {
    "action": {"topic": "/uvdiff/command"},
    "state": {
        "eef_pos": {"topic": "/uvdiff/eef_pose", "field": "position"},
        "gripper_qpos": DEFAULT_TOPICS["state"]["gripper_qpos"],
        "object": {"topic": "/uvdiff/object_state"},
    },
    "cameras": {"front": {"topic": "/camera/image/compressed", "size": [16, 24]}},
}


def have_rosbag1() -> bool:
    return _have_ros() and Path("/usr/lib/python3/dist-packages/rosbag").is_dir()


def bag1(path: Path, steps: int = 30) -> Path:
    subprocess.run(
        [sys.executable, str(HERE / "write_bag1.py"), str(path), "--steps", str(steps)],
        check=True,
        capture_output=True,
    )
    return path


def check_rows(ep, steps=30):
    """Command k (k in dim 0) is row k; its state is the 40 Hz sample 2k (value 2k)."""
    k = np.arange(steps)
    np.testing.assert_array_equal(ep.action[:, 0], k)
    np.testing.assert_array_equal(ep.state["eef_pos"][:, 0], 2 * k)
    np.testing.assert_array_equal(ep.state["gripper_qpos"], np.stack([2 * k, 2 * k + 0.5], 1))
    np.testing.assert_array_equal(ep.state["object"][:, 0], 2 * k)
    np.testing.assert_allclose(ep.timestamp, k / 20, atol=1e-6)


@pytest.mark.skipif(not have_rosbag1(), reason="Debian's python3-rosbag missing")
def test_rosbag1_from_debians_rosbag(tmp_path):
    src = bag1(tmp_path / "demo.bag")
    folder = convert_rosbag(src, tmp_path / "out", topics=TOPICS, task="lift", progress=False)
    assert validate(folder.root).ok
    info = folder.info
    assert info.fps == 20 and info.action_dim == 7 and info.cameras == {"front": (16, 24)}
    assert info.state == {"eef_pos": 3, "gripper_qpos": 2, "object": 10}
    ep = folder.read_episode(0)
    check_rows(ep)
    assert ep.task == "lift"
    red = ep.frames["front"][:, 8, 12]  # a red JPEG (through mp4): red dominates
    assert (red[:, 0] > 150).all() and (red[:, 1:] < 80).all()


@pytest.mark.skipif(not have_rosbag1(), reason="Debian's python3-rosbag missing")
def test_cli_folder_of_bags_is_detected(tmp_path, capsys):
    bags = tmp_path / "bags"
    bags.mkdir()
    bag1(bags / "a.bag", 20)
    bag1(bags / "b.bag", 25)
    topics = tmp_path / "topics.yaml"
    import yaml

    topics.write_text(yaml.safe_dump(TOPICS))
    out = tmp_path / "out"
    assert convert_main([str(bags), str(out), "--topics", str(topics), "--no-progress"]) == 0
    folder = DemoFolder(out)
    assert [folder.read_episode(e).length for e in folder.episode_ids] == [20, 25]


def write_bag2(path: Path, storage: str, steps: int = 30) -> Path:
    """ROS 2 CDR messages through rosbags' writer: sqlite3 folder or an MCAP file."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    m = ts.types
    Time = m["builtin_interfaces/msg/Time"]
    Header = m["std_msgs/msg/Header"]
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as w:
        conns = {
            name: w.add_connection(topic, typ, typestore=ts)
            for name, topic, typ in [
                ("js", "/joint_states", "sensor_msgs/msg/JointState"),
                ("pose", "/uvdiff/eef_pose", "geometry_msgs/msg/PoseStamped"),
                ("obj", "/uvdiff/object_state", "std_msgs/msg/Float64MultiArray"),
                ("cmd", "/uvdiff/command", "std_msgs/msg/Float64MultiArray"),
                ("img", "/camera/image/compressed", "sensor_msgs/msg/Image"),
            ]
        }
        layout = m["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
        t0 = 1_700_000_000 * 10**9
        events = []
        for i in range(steps * 2):
            t = t0 + i * 25_000_000
            hdr = Header(stamp=Time(sec=t // 10**9, nanosec=t % 10**9), frame_id="")
            js = m["sensor_msgs/msg/JointState"](
                header=hdr,
                name=["panda_finger_joint1", "x", "panda_finger_joint2"],
                position=np.array([i, -1.0, i + 0.5]),
                velocity=np.zeros(0),
                effort=np.zeros(0),
            )
            P, Q = m["geometry_msgs/msg/Point"], m["geometry_msgs/msg/Quaternion"]
            pose = m["geometry_msgs/msg/PoseStamped"](
                header=hdr,
                pose=m["geometry_msgs/msg/Pose"](
                    position=P(x=float(i), y=0.0, z=1.0), orientation=Q(x=0.0, y=0.0, z=0.0, w=1.0)
                ),
            )
            obj = m["std_msgs/msg/Float64MultiArray"](layout=layout, data=np.full(10, float(i)))
            events += [(t, "js", js), (t, "pose", pose), (t, "obj", obj)]
            if i % 4 == 0:
                rgb = np.zeros((32, 48, 3), np.uint8)
                rgb[..., 0] = 200
                img = m["sensor_msgs/msg/Image"](
                    header=hdr,
                    height=32,
                    width=48,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=144,
                    data=rgb.reshape(-1),
                )
                events.append((t, "img", img))
        for k in range(steps):
            t = t0 + k * 50_000_000 + 5_000_000
            data = np.array([k, 0, 0, 0, 0, 0, -1.0])
            events.append((t, "cmd", m["std_msgs/msg/Float64MultiArray"](layout=layout, data=data)))
        for t, name, msg in sorted(events, key=lambda e: e[0]):
            c = conns[name]
            w.write(c, t, ts.serialize_cdr(msg, c.msgtype))
    return path


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_rosbag2_and_mcap(tmp_path, storage):
    src = write_bag2(tmp_path / "rec", storage)
    if storage == "mcap":  # a bare .mcap file, as recorded by other tools
        (mcap,) = src.glob("*.mcap")
        src = mcap
    folder = convert_rosbag(src, tmp_path / "out", topics=TOPICS, progress=False)
    assert validate(folder.root).ok
    ep = folder.read_episode(0)
    check_rows(ep)
    assert ep.frames["front"].shape == (30, 16, 24, 3)
    assert (ep.frames["front"][:, 8, 12, 0] > 150).all()


def test_missing_topic_is_named_and_nothing_is_written(tmp_path):
    src = write_bag2(tmp_path / "rec", "sqlite3", steps=5)
    topics = {**TOPICS, "action": {"topic": "/teleop/cmd"}}
    with pytest.raises(DemoFolderError, match=r"\['/teleop/cmd'\] are not in the bag"):
        convert_rosbag(src, tmp_path / "out", topics=topics, progress=False)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_damaged_bag_names_the_file(tmp_path):
    src = write_bag2(tmp_path / "rec", "mcap", steps=5)
    (mcap,) = src.glob("*.mcap")
    data = mcap.read_bytes()
    bad = tmp_path / "cut.mcap"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DemoFolderError) as e:
        convert_rosbag(bad, tmp_path / "out", topics=TOPICS, progress=False)
    assert "cut.mcap" in str(e.value)


def test_bad_topic_map_and_existing_output(tmp_path):
    with pytest.raises(DemoFolderError, match="action"):
        convert_rosbag(tmp_path, tmp_path / "o", topics={"state": {}}, progress=False)
    src = write_bag2(tmp_path / "rec", "sqlite3", steps=3)
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError):
        convert_rosbag(src, tmp_path / "exists", topics=TOPICS, progress=False)
