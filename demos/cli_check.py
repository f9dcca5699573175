"""uvdiff-check DEMO_DIR: one line per problem and exit 1, or a summary and exit 0."""

from __future__ import annotations

import argparse
import sys

from .validate import validate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="uvdiff-check",
        description="Check a demo folder (format version 1): dataset.json schema and version, "
        "every episode's frame count against its action count, dims against dataset.json, "
        "finite numbers, readable videos, increasing timestamps.",
    )
    parser.add_argument("demo_dir", help="the demo folder (holds dataset.json and episodes/)")
    parser.add_argument(
        "--no-decode",
        action="store_true",
        help="do not decode the videos (faster; frame counts and codecs are then not checked)",
    )
    args = parser.parse_args(argv)
    report = validate(args.demo_dir, decode_videos=not args.no_decode)
    if report.problems:
        for problem in report.problems:
            print(f"{args.demo_dir.rstrip('/')}/{problem}")
        sys.stdout.flush()
        print(f"{len(report.problems)} problem(s) in {args.demo_dir}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
