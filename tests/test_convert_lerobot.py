"""LeRobot <-> demo folder: import what LeRobot 0.4.4 wrote, export, round trip, bad input."""

import json
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from demos import DatasetInfo, DemoFolder, DemoFolderError, Episode, validate, write_video
from demos.convert.cli import main as convert_main
from demos.convert.lerobot import export_lerobot, import_lerobot
from demos.convert.lerobot import read as lerobot_read
from demos.video import read_video_pts

FIXTURE = Path(__file__).parent / "fixtures" / "lerobot_v3_panda"
DATA = "data/chunk-000/file-000.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"
CAM = "observation.images.agentview"
VIDEO = f"videos/{CAM}/chunk-000/file-000.mp4"
LENGTHS = (24, 30, 36)
TASKS = ("pick the cube", "stack the cube", "open the drawer")
RED_TOL = 8.0  # AV1 then mp4v: the red mean of a frame stays within this of (9 t) % 255


def red_error(frames: np.ndarray) -> float:
    """Largest gap between each frame's red mean and the (9 t) % 255 it was drawn with."""
    t = np.arange(len(frames))
    return float(np.abs(frames[..., 0].mean(axis=(1, 2)) - (9 * t) % 255).max())


def copy_fixture(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "src"))


def nothing_left(out: Path) -> bool:
    """Neither ``out`` nor a staging folder beside it survives a failed conversion."""
    return not out.exists() and not list(out.parent.glob(f".{out.name}.tmp-*"))


# ---------------------------------------------------------------------- (a) the fixture


def test_import_fixture_matches_what_lerobot_wrote(tmp_path):
    folder = import_lerobot(FIXTURE, tmp_path / "out", progress=False)
    report = validate(tmp_path / "out")
    assert report.ok, report.problems
    assert (report.episodes, report.frames) == (3, sum(LENGTHS))
    info = folder.info
    assert (info.fps, info.robot, info.action_dim) == (20, "panda", 7)
    assert info.state == {"state": 9}
    assert info.cameras == {"agentview": (64, 80)}
    for e, T in enumerate(LENGTHS):
        ep = folder.read_episode(e)
        assert ep.length == T
        expected = np.repeat((e + np.arange(T) / 100)[:, None], 7, axis=1).astype(np.float32)
        np.testing.assert_allclose(ep.action, expected, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(ep.timestamp, np.arange(T) / 20, atol=1e-6)
        assert ep.state["state"].shape == (T, 9)
        assert ep.task == TASKS[e]
        assert ep.frames["agentview"].shape == (T, 64, 80, 3)
        assert red_error(ep.frames["agentview"]) < RED_TOL


def test_import_decodes_each_shared_video_once(tmp_path, monkeypatch):
    calls = []

    def counting(path):
        calls.append(Path(path).name)
        return read_video_pts(path)

    monkeypatch.setattr(lerobot_read, "read_video_pts", counting)
    import_lerobot(FIXTURE, tmp_path / "out", progress=False)
    assert calls == ["file-000.mp4"]


def make_v21(tmp_path: Path, short_episode: int | None = None) -> Path:
    """The fixture laid out as codebase v2.1: one Parquet and one mp4 per episode."""
    src = tmp_path / "v21"
    info = json.loads((FIXTURE / "meta/info.json").read_text())
    info |= {
        "codebase_version": "v2.1",
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/"
        "episode_{episode_index:06d}.mp4",
    }
    (src / "meta").mkdir(parents=True)
    (src / "meta/info.json").write_text(json.dumps(info))
    lines = [{"task_index": i, "task": t} for i, t in enumerate(TASKS)]
    (src / "meta/tasks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    lines = [{"episode_index": e, "tasks": [TASKS[e]], "length": T} for e, T in enumerate(LENGTHS)]
    (src / "meta/episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    table = pq.read_table(FIXTURE / DATA)
    frames, _ = read_video_pts(FIXTURE / VIDEO)
    (src / "data/chunk-000").mkdir(parents=True)
    (src / f"videos/chunk-000/{CAM}").mkdir(parents=True)
    start = 0
    for e, T in enumerate(LENGTHS):
        rows = table.filter(pc.equal(table["episode_index"], e))
        pq.write_table(rows, src / f"data/chunk-000/episode_{e:06d}.parquet")
        n = T - 5 if e == short_episode else T
        write_video(src / f"videos/chunk-000/{CAM}/episode_{e:06d}.mp4", frames[start:][:n], 20)
        start += T
    return src


def test_import_v21(tmp_path):
    folder = import_lerobot(make_v21(tmp_path), tmp_path / "out", progress=False)
    assert validate(tmp_path / "out").ok
    assert folder.info.tasks == list(TASKS)
    for e, T in enumerate(LENGTHS):
        ep = folder.read_episode(e)
        np.testing.assert_allclose(ep.action[:, 3], e + np.arange(T) / 100, rtol=1e-6)
        assert ep.task == TASKS[e]
        assert red_error(ep.frames["agentview"]) < 2 * RED_TOL  # three lossy codings


def test_import_v21_video_shorter_than_episode(tmp_path):
    src = make_v21(tmp_path, short_episode=1)
    with pytest.raises(DemoFolderError, match="episode_000001.mp4: .*agentview.*shorter"):
        import_lerobot(src, tmp_path / "out", progress=False)
    assert nothing_left(tmp_path / "out")


def test_import_image_feature(tmp_path):
    """Frames stored as PNG bytes in the data Parquet (LeRobot's ``image`` dtype)."""
    src = copy_fixture(tmp_path)
    info = json.loads((src / "meta/info.json").read_text())
    info["features"][CAM]["dtype"] = "image"
    del info["features"][CAM]["info"]
    (src / "meta/info.json").write_text(json.dumps(info))
    frames, _ = read_video_pts(FIXTURE / VIDEO)
    png = [cv2.imencode(".png", cv2.cvtColor(f, cv2.COLOR_RGB2BGR))[1].tobytes() for f in frames]
    images = pa.array([{"bytes": b, "path": None} for b in png])
    table = pq.read_table(src / DATA)
    pq.write_table(table.append_column(CAM, images), src / DATA)
    shutil.rmtree(src / "videos")
    folder = import_lerobot(src, tmp_path / "out", progress=False)
    assert folder.info.cameras == {"agentview": (64, 80)}
    for e, T in enumerate(LENGTHS):
        video = folder.read_frames(e, "agentview")
        assert video.shape == (T, 64, 80, 3)
        assert red_error(video) < RED_TOL


# ---------------------------------------------------------------------- (b) round trip


def smooth_frames(T: int, size: tuple[int, int], green: int) -> np.ndarray:
    """Frames a lossy codec keeps well: flat red 16 t (t < 16), a horizontal ramp in blue."""
    video = np.zeros((T, *size, 3), np.uint8)
    video[..., 0] = (16 * np.arange(T))[:, None, None]
    video[..., 1] = green
    video[..., 2] = np.linspace(0, 200, size[1]).astype(np.uint8)[None, None, :]
    return video


def make_demo_folder(root: Path) -> tuple[DemoFolder, list[Episode]]:
    cams = {"front": (32, 48), "wrist": (16, 24)}
    info = DatasetInfo(fps=10, action_dim=3, state={"pos": 2, "grip": 1}, cameras=cams, robot="ur5")
    folder = DemoFolder.create(root, info)
    rng = np.random.default_rng(0)
    episodes = []
    for e, (T, task) in enumerate([(12, "reach"), (9, "push"), (15, "reach")]):
        ep = Episode(
            action=rng.normal(size=(T, 3)).astype(np.float32),
            state={"pos": rng.normal(size=(T, 2)), "grip": rng.random((T, 1))},
            frames={
                c: smooth_frames(T, hw, 40 * (c == "front") + 10 * e) for c, hw in cams.items()
            },
            task=task,
        )
        folder.add_episode(ep)
        episodes.append(ep)
    return folder, episodes


def test_round_trip(tmp_path):
    source, episodes = make_demo_folder(tmp_path / "demo")
    exported = export_lerobot(tmp_path / "demo", tmp_path / "lerobot", progress=False)
    assert exported == tmp_path / "lerobot"
    info = json.loads((exported / "meta/info.json").read_text())
    assert set(info["features"]) >= {
        "observation.pos",
        "observation.grip",
        "observation.images.front",
        "observation.images.wrist",
        "action",
    }
    types = schema_of(exported / DATA)
    assert types["observation.pos"] == "fixed_size_list<element: float>[2]"
    assert types["observation.grip"] == "float"  # LeRobot reads shape (1,) as a scalar
    back = import_lerobot(exported, tmp_path / "back", progress=False)
    assert validate(tmp_path / "back").ok
    assert (back.info.fps, back.info.robot, back.info.action_dim) == (10, "ur5", 3)
    assert back.info.state == {"pos": 2, "grip": 1}
    assert back.info.cameras == {"front": (32, 48), "wrist": (16, 24)}
    assert back.info.tasks == ["reach", "push"]
    assert len(back) == 3
    for e, original in enumerate(episodes):
        ep = back.read_episode(e)
        np.testing.assert_array_equal(ep.action, original.action)
        for key in ("pos", "grip"):
            np.testing.assert_array_equal(ep.state[key], original.state[key].astype(np.float32))
        np.testing.assert_allclose(ep.timestamp, np.arange(original.length) / 10, atol=1e-6)
        assert ep.task == original.task
        for cam, frames in original.frames.items():
            got = ep.frames[cam].astype(np.float64)
            assert got.shape == frames.shape
            before = source.read_frames(e, cam).astype(np.float64)  # what export read
            assert np.abs(got - before).mean() < 4, (e, cam)  # h264, then mp4v again
            # red steps by 16 a frame: a frame out of place would be >= 9 off
            red = got[..., 0].mean(axis=(1, 2)) - before[..., 0].mean(axis=(1, 2))
            assert np.abs(red).max() < 7, (e, cam)


def test_policy_layout_concatenates_state_keys_as_lerobots_policies_read_them(tmp_path):
    source, episodes = make_demo_folder(tmp_path / "demo")
    groups = {"observation.state": ["grip", "pos"]}
    exported = export_lerobot(tmp_path / "demo", tmp_path / "lerobot", groups=groups,
                              progress=False)  # fmt: skip
    info = json.loads((exported / "meta/info.json").read_text())
    state = info["features"]["observation.state"]
    assert state["shape"] == [3] and state["names"] == ["grip_0", "pos_0", "pos_1"]
    assert "observation.pos" not in info["features"] and "observation.grip" not in info["features"]
    table = pq.read_table(exported / DATA)
    values = np.asarray(table.column("observation.state").to_pylist(), np.float32)
    first = episodes[0]
    want = np.concatenate([first.state["grip"], first.state["pos"]], axis=1).astype(np.float32)
    np.testing.assert_array_equal(values[: first.length], want)
    with pytest.raises(DemoFolderError, match="cannot be grouped"):
        export_lerobot(tmp_path / "demo", tmp_path / "bad", groups={"x": ["nope"]}, progress=False)


# ---------------------------------------------------------------------- (c) LeRobot's layout


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The fixture imported and exported again: it must look like what LeRobot wrote."""
    tmp = tmp_path_factory.mktemp("export")
    import_lerobot(FIXTURE, tmp / "demo", progress=False)
    return export_lerobot(tmp / "demo", tmp / "lerobot", progress=False)


def test_export_info_json_matches_lerobot(exported):
    ours = json.loads((exported / "meta/info.json").read_text())
    theirs = json.loads((FIXTURE / "meta/info.json").read_text())
    assert list(ours) == list(theirs)
    for key in (
        "codebase_version",
        "robot_type",
        "total_episodes",
        "total_frames",
        "total_tasks",
        "chunks_size",
        "fps",
        "splits",
        "data_path",
        "video_path",
    ):
        assert ours[key] == theirs[key], key
    assert list(ours["features"]) == list(theirs["features"])
    for key, ft in theirs["features"].items():
        assert set(ours["features"][key]) == set(ft), key
        assert (ours["features"][key]["dtype"], ours["features"][key]["shape"]) == (
            ft["dtype"],
            ft["shape"],
        )
    video = ours["features"][CAM]["info"]
    assert set(video) == set(theirs["features"][CAM]["info"])
    assert video["video.codec"] == "h264"


def schema_of(path: Path) -> dict[str, str]:
    """Column -> Arrow type, as text so that the names of list children count too."""
    return {f.name: str(f.type) for f in pq.read_schema(path)}


@pytest.mark.parametrize("rel", [DATA, EPISODES, "meta/tasks.parquet"])
def test_export_parquet_schemas_match_lerobot(exported, rel):
    assert schema_of(exported / rel) == schema_of(FIXTURE / rel)


def test_export_parquet_values_match_lerobot(exported):
    for rel, columns in [
        (DATA, ["timestamp", "frame_index", "episode_index", "index", "task_index"]),
        (
            EPISODES,
            [
                "episode_index",
                "tasks",
                "length",
                "dataset_from_index",
                "dataset_to_index",
                f"videos/{CAM}/from_timestamp",
                f"videos/{CAM}/to_timestamp",
            ],
        ),
        ("meta/tasks.parquet", ["task_index", "__index_level_0__"]),
    ]:
        ours, theirs = pq.read_table(exported / rel), pq.read_table(FIXTURE / rel)
        for c in columns:
            expected = theirs[c].to_pylist()
            if pa.types.is_floating(theirs[c].type):
                expected = pytest.approx(expected)
            assert ours[c].to_pylist() == expected, (rel, c)
    meta = json.loads(pq.read_schema(exported / "meta/tasks.parquet").metadata[b"pandas"])
    assert meta["index_columns"] == ["__index_level_0__"]
    action = np.stack(pq.read_table(exported / DATA)["action"].to_numpy(zero_copy_only=False))
    expected = np.concatenate([e + np.arange(T) / 100 for e, T in enumerate(LENGTHS)])
    np.testing.assert_allclose(action, np.repeat(expected[:, None], 7, 1), rtol=1e-6)


def test_export_stats_match_lerobot(exported):
    ours = json.loads((exported / "meta/stats.json").read_text())
    theirs = json.loads((FIXTURE / "meta/stats.json").read_text())
    assert set(ours) == set(theirs)
    for key, stats in theirs.items():
        assert set(ours[key]) == set(stats), key
        for name, value in stats.items():
            assert np.shape(ours[key][name]) == np.shape(value), (key, name)
    for name in ("min", "max", "mean", "std", "count"):  # exact for low-dim features
        for key in ("action", "timestamp", "index"):
            np.testing.assert_allclose(ours[key][name], theirs[key][name], rtol=1e-5, atol=1e-6)
    assert ours["action"]["min"] == [0.0] * 7
    assert ours["action"]["max"] == pytest.approx([2.35] * 7)


def test_export_video_pts_and_codec(exported):
    with av.open(str(exported / VIDEO)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
    frames, pts = read_video_pts(exported / VIDEO)
    assert frames.shape == (sum(LENGTHS), 64, 80, 3)
    np.testing.assert_allclose(pts, np.arange(sum(LENGTHS)) / 20, atol=1e-9)
    starts = np.cumsum((0, *LENGTHS[:-1]))
    for start, T in zip(starts, LENGTHS, strict=True):
        assert red_error(frames[start : start + T]) < RED_TOL


# ---------------------------------------------------------------------- (d) bad input


def drop_info(src: Path) -> None:
    (src / "meta/info.json").unlink()


def edit_info(**changes):
    def edit(src: Path) -> None:
        path = src / "meta/info.json"
        info = json.loads(path.read_text())
        for key, value in changes.items():
            if key == "state_shape":
                info["features"]["observation.state"]["shape"] = value
            else:
                info[key] = value
        path.write_text(json.dumps(info))

    return edit


def drop_action(src: Path) -> None:
    table = pq.read_table(src / DATA)
    pq.write_table(table.drop_columns(["action"]), src / DATA)


def nan_action(src: Path) -> None:
    table = pq.read_table(src / DATA)
    action = table["action"].to_pylist()
    action[30][2] = float("nan")
    column = pa.array(action, table.schema.field("action").type)
    pq.write_table(
        table.set_column(table.schema.get_field_index("action"), "action", column), src / DATA
    )


def truncate_video(src: Path) -> None:
    data = (src / VIDEO).read_bytes()
    (src / VIDEO).write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("breaks", "pattern"),
    [
        (drop_info, r"meta/info.json: missing"),
        (edit_info(codebase_version="v9.9"), r"meta/info.json: codebase_version 'v9.9'"),
        (edit_info(state_shape=[8]), rf"{DATA}: column 'observation.state' .*shape says 8"),
        (drop_action, rf"{DATA}: column 'action' is missing"),
        (nan_action, rf"{DATA}: column 'action' has 1 non-finite .*episode 1 .*frame 6"),
        (truncate_video, rf"{VIDEO}: {CAM}: decoding failed"),
    ],
    ids=["no-info", "version", "shape", "no-action", "nan", "truncated-video"],
)
def test_bad_input_names_file_and_field(tmp_path, breaks, pattern):
    src = copy_fixture(tmp_path)
    breaks(src)
    out = tmp_path / "out"
    with pytest.raises(DemoFolderError, match=pattern):
        import_lerobot(src, out, progress=False)
    assert nothing_left(out)


def test_export_refuses_existing_out(tmp_path):
    make_demo_folder(tmp_path / "demo")
    (tmp_path / "lerobot").mkdir()
    with pytest.raises(FileExistsError):
        export_lerobot(tmp_path / "demo", tmp_path / "lerobot", progress=False)


# ---------------------------------------------------------------------- (e) the CLI


def test_cli(tmp_path, capsys):
    assert convert_main([str(FIXTURE), str(tmp_path / "ok")]) == 0
    assert validate(tmp_path / "ok").ok
    src = copy_fixture(tmp_path)
    drop_action(src)
    assert convert_main([str(src), str(tmp_path / "bad"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"error: {DATA}: column 'action' is missing" in err
    assert nothing_left(tmp_path / "bad")


def _folder_with_objects(root: Path, cameras: dict) -> Path:
    info = DatasetInfo(fps=10, action_dim=2, state={"eef_pos": 3, "object": 4}, cameras=cameras)
    folder = DemoFolder.create(root, info)
    rng = np.random.default_rng(1)
    T = 6
    folder.add_episode(Episode(
        action=rng.normal(size=(T, 2)).astype(np.float32),
        state={"eef_pos": rng.normal(size=(T, 3)), "object": rng.normal(size=(T, 4))},
        frames={c: smooth_frames(T, hw, 20) for c, hw in cameras.items()}, task="lift",
    ))  # fmt: skip
    return root


def test_camera_layout_leaves_the_object_poses_out(tmp_path, capsys):
    src = _folder_with_objects(tmp_path / "demo", {"front": (16, 16)})
    for layout in ("policy", "camera"):
        out = tmp_path / layout
        assert convert_main([str(src), str(out), "--from", "to-lerobot", "--layout", layout,
                             "--no-progress"]) == 0  # fmt: skip
        features = json.loads((out / "meta/info.json").read_text())["features"]
        assert features["observation.state"]["names"] == ["eef_pos_0", "eef_pos_1", "eef_pos_2"]
        assert "observation.images.front" in features and "observation.object" not in features
        assert ("observation.environment_state" in features) == (layout == "policy")
        columns = pq.read_table(out / DATA).column_names
        assert ("observation.environment_state" in columns) == (layout == "policy")
    blind = _folder_with_objects(tmp_path / "blind", {})
    assert convert_main([str(blind), str(tmp_path / "no"), "--from", "to-lerobot", "--layout",
                         "camera", "--no-progress"]) == 1  # fmt: skip
    assert "--layout camera: the folder has no camera" in capsys.readouterr().err
