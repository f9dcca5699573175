"""uvdiff-convert: other formats into a demo folder, and a demo folder out to LeRobot v3."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DemoFolderError

FORMATS = {
    "robomimic": "robomimic HDF5 (data/demo_i/{actions, obs/*, states}) -> demo folder",
    "lerobot": "LeRobot dataset on disk (v3.0, or v2.1) -> demo folder",
    "to-lerobot": "demo folder -> LeRobot dataset v3.0 (Parquet + mp4)",
    "rosbag": "rosbag1 .bag, rosbag2 folder/.db3, .mcap (or a folder of them) -> demo folder",
}


def detect_format(src: Path) -> str:
    if src.is_file() and src.suffix.lower() in (".hdf5", ".h5", ".hdf"):
        return "robomimic"
    if (src / "meta" / "info.json").is_file():
        return "lerobot"
    if (src / "dataset.json").is_file():
        return "to-lerobot"
    from .rosbag import find_bags

    try:
        find_bags(src)
        return "rosbag"
    except DemoFolderError:
        pass
    raise DemoFolderError(
        "cannot tell the format: not an .hdf5 file, a LeRobot dataset (meta/info.json), "
        "a demo folder (dataset.json) or ROS bags; pass --from",
        str(src),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="uvdiff-convert",
        description="Convert demonstrations into a uvdiff demo folder, or a demo folder into a "
        "LeRobot v3 dataset. The output folder must not exist; it appears only when the "
        "conversion has succeeded.",
        epilog="formats:\n"
        + "\n".join(f"  {k:<11} {v}" for k, v in FORMATS.items())
        + "\n\nexamples:\n  uvdiff-convert lift_ph.hdf5 demos/lift\n"
        "  uvdiff-convert ~/.cache/huggingface/lerobot/user/ds demos/ds\n"
        "  uvdiff-convert demos/lift lerobot/lift --from to-lerobot --layout policy\n"
        "  uvdiff-convert bags/ demos/arm --topics topics.yaml --task 'open the door'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "src", type=Path, help="input: .hdf5 file, LeRobot folder, demo folder or bag(s)"
    )
    parser.add_argument("out", type=Path, help="output folder (must not exist)")
    parser.add_argument(
        "--from",
        dest="fmt",
        choices=sorted(FORMATS),
        help="input format (default: detected from src)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--topics", type=Path, help="rosbag: YAML topic map (action, state, cameras)"
    )
    parser.add_argument("--fps", type=float, help="rosbag: rate (default: from the actions)")
    parser.add_argument("--task", help="rosbag: the task string of every episode")
    parser.add_argument(
        "--layout",
        choices=["keys", "policy", "camera"],
        default="keys",
        help="to-lerobot: keys (observation.<key> per state key), policy (the robot's keys "
        "as observation.state, the object's as observation.environment_state: what LeRobot's "
        "policies read) or camera (policy without the object's keys: camera-only policies)",
    )
    args = parser.parse_args(argv)
    try:
        fmt = args.fmt or detect_format(args.src)
        progress = not args.no_progress
        if fmt == "robomimic":
            from .robomimic import convert_robomimic

            convert_robomimic(args.src, args.out, progress=progress)
        elif fmt == "rosbag":
            import yaml

            from .rosbag import convert_rosbag

            topics = yaml.safe_load(args.topics.read_text()) if args.topics else None
            convert_rosbag(
                args.src,
                args.out,
                topics=topics,
                fps=args.fps,
                task=args.task,
                progress=progress,
            )
        elif fmt == "lerobot":
            from .lerobot import import_lerobot

            import_lerobot(args.src, args.out, progress=progress)
        else:
            from ..folder import DemoFolder
            from .lerobot import export_lerobot, policy_groups, scene_keys

            info = DemoFolder(args.src).info
            groups, drop = None, []
            if args.layout != "keys":
                groups = policy_groups(info, scene=args.layout == "policy")
            if args.layout == "camera":
                if not info.cameras:
                    raise DemoFolderError(
                        "--layout camera: the folder has no camera", "dataset.json"
                    )
                drop = scene_keys(info)
            export_lerobot(args.src, args.out, groups=groups, drop=drop, progress=progress)
    except DemoFolderError as e:
        for problem in e.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    except FileExistsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
