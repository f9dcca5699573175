"""uvdiff-demo: the main job on the built-in default (``make demo``).

Today it runs the stages that exist: demos of a three-stage task, validation, the training
caches (frames, low-dim arrays, normalisation stats), a pass over training windows, and a
round trip through LeRobot v3. Decomposition, training and evaluation join as they land.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class DemoResult:
    out_dir: Path
    episodes: int
    frames: int
    windows_per_s: float
    report: Path


def run_demo(
    out_dir: Path,
    *,
    episodes: int = 24,
    steps: int = 100,
    image_size: tuple[int, int] = (84, 84),
    seed: int = 0,
    progress: bool = True,
) -> DemoResult:
    """Run every stage that exists into ``out_dir``; each finished stage is skipped on rerun."""
    import cv2

    from demos.convert.lerobot import export_lerobot, import_lerobot
    from demos.synthetic import make_folder
    from demos.validate import validate
    from demos.windows import WindowDataset

    out_dir = Path(out_dir)
    stages = ["demos", "validate", "caches", "windows", "lerobot round trip", "report"]
    say = _stage_printer(stages, progress)

    say("demos")
    folder = make_folder(out_dir / "demos", episodes, T=steps, size=tuple(image_size), seed=seed)

    say("validate")
    report = validate(folder.root)
    report.raise_if_bad()

    say("caches")
    ds = WindowDataset(folder, n_obs=2, horizon=16, goal="future", progress=progress)

    say("windows")
    rows = np.random.default_rng(seed).integers(0, len(ds), 5000)
    t0 = time.perf_counter()
    for r in rows:
        ds[int(r)]
    windows_per_s = len(rows) / (time.perf_counter() - t0)

    say("lerobot round trip")
    lerobot = out_dir / "lerobot_v3"
    if not lerobot.exists():
        export_lerobot(folder.root, lerobot, progress=progress)
    back = out_dir / "from_lerobot"
    if not back.exists():
        import_lerobot(lerobot, back, progress=progress)
    np.testing.assert_allclose(
        import_folder_action(back), import_folder_action(folder.root), atol=1e-6
    )

    say("report")
    ep = folder.read_episode(0)
    strip = np.hstack(list(ep.frames[next(iter(folder.info.cameras))][:: max(1, ep.length // 8)]))
    cv2.imwrite(str(out_dir / "episode0_strip.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    md = out_dir / "report.md"
    md.write_text(
        "# uvdiff demo\n\n"
        f"- {report.summary()}\n"
        f"- training windows/s (1 process, cached frames): {windows_per_s:,.0f}\n"
        f"- LeRobot v3 export: `{lerobot}`; re-imported to `{back}` with identical actions\n\n"
        "![episode 0](episode0_strip.png)\n"
    )
    return DemoResult(out_dir, report.episodes, report.frames, windows_per_s, md)


def import_folder_action(root: Path) -> np.ndarray:
    from demos import DemoFolder

    folder = DemoFolder(root)
    return np.concatenate([folder.read_lowdim(e)["action"] for e in folder.episode_ids])


def _stage_printer(stages: list[str], enabled: bool):
    def say(name: str) -> None:
        if enabled:
            print(f"[{stages.index(name) + 1}/{len(stages)}] {name}", flush=True)

    return say


def main() -> None:
    import hydra
    from omegaconf import DictConfig

    @hydra.main(config_path="pkg://configs", config_name="demo", version_base="1.3")
    def app(cfg: DictConfig) -> None:
        episodes = 6 if cfg.quick else cfg.episodes
        result = run_demo(
            Path(cfg.out_dir),
            episodes=episodes,
            steps=cfg.steps,
            image_size=tuple(cfg.image_size),
            seed=cfg.seed,
        )
        print(f"{result.episodes} demos, {result.frames} frames; report: {result.report}")

    app()


if __name__ == "__main__":
    main()
