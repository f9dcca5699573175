"""A camera-only BESO policy on one simulated task, end to end and resumable (issue 17's table).

The policy sees only cameras (through a frozen backbone fitted on the demo videos, or encoded
end to end) and the arm's own state; no object pose enters the backbone, the policy or the
evaluation's inputs. Stages, each skipped when its output is there, so a killed run resumes:

  collect   scripted demos with the cameras (``sim.collect``)
  train     ``policies.train.train`` (the backbone's fit and embedding cache happen inside and
            are timed with it); a killed training resumes from its last checkpoint
  eval      ``sim.evaluate`` on seeds never used while tuning (default 3000..3049)
  robust    with ``--robustness``: the same seeds with the agentview camera moved 3 cm sideways
            (``eval_camera_moved``) and with the lights at 60% (``eval_dim_light``)

Prints each stage's wall time and the success rate with its 95% Wilson interval, and writes
``OUT/summary.json``. Example (lift, the frozen-embedding route, ``bc_local`` by default):

    MUJOCO_GL=egl .venv/bin/python benchmarks/camera_policy.py --task lift --out /tmp/cam_lift
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

PROPRIO = ["eef_pos", "eef_quat", "gripper_qpos"]
VARIANTS = {  # robustness checks: looks the demos never had (sim.scene.SceneVariant's fields)
    "eval_camera_moved": {"camera_shift": (0.0, 0.03, 0.0)},
    "eval_dim_light": {"light_scale": 0.6},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="lift")
    p.add_argument("--out", type=Path, required=True, help="the run folder (resumed if there)")
    p.add_argument("--demos", type=int, default=50, help="scripted demos (seeds 0..N-1)")
    p.add_argument("--demos-from", type=Path, help="reuse this run's collected demos (a link)")
    p.add_argument("--cameras", nargs="+", default=["agentview", "robot0_eye_in_hand"])
    p.add_argument("--image-size", type=int, nargs=2, default=[84, 84])
    p.add_argument(
        "--backbone",
        default="bc_local",
        help="frozen backbone fitted on the demos (bc_local: 98%% on stack where "
        "pixels gets 30%%); 'none': the cameras end to end",
    )
    p.add_argument("--goal", default="none", help="none | final | uvd")
    p.add_argument("--train-steps", type=int, default=4000)
    p.add_argument(
        "--fit-steps", type=int, help="steps of the backbone's fit (bc_local's default: 4000)"
    )
    p.add_argument(
        "--fit-brightness", type=float, default=0.0,
        help="bc_local fit: scale each frame by a factor in [1-b, 1+b] (lighting robustness)",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--hidden", type=int, default=256, help="MLP width")
    p.add_argument("--d-state", type=int, default=64)
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--eval-seed", type=int, default=3000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="torch threads for training")
    p.add_argument("--robustness", action="store_true", help="also evaluate under scene variants")
    p.add_argument(
        "--until",
        choices=["collect", "train", "eval"],
        default="eval",
        help="stop after this stage (e.g. collect now, choose the recipe later)",
    )
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    summary_path = a.out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()}

    def stage(name, fn):
        if name in summary.get("stages", {}):
            print(f"{name}: done before ({summary['stages'][name]['wall_s']:.0f} s)")
            return
        t0 = time.perf_counter()
        result = fn()
        rec = {"wall_s": round(time.perf_counter() - t0, 1), **result}
        summary.setdefault("stages", {})[name] = rec
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"{name}: {rec}")

    stage("collect", lambda: collect(a))
    if a.until == "collect":
        return
    stage("train", lambda: train(a))
    if a.until == "train":
        return
    stage("eval", lambda: evaluate(a))
    if a.robustness:
        from sim.scene import SceneVariant

        for name, change in VARIANTS.items():
            scene = SceneVariant(**change)
            stage(name, lambda scene=scene, name=name: evaluate(a, scene, name))
    total = sum(s["wall_s"] for s in summary["stages"].values())
    print(f"total {total / 60:.1f} min; {summary['stages']['eval']['success']}")


def collect(a) -> dict:
    from demos import DemoFolder
    from sim import collect as run_collect

    demos = a.out / "demos"
    if a.demos_from is not None:  # the same demos as another run: a fair comparison of recipes
        demos.symlink_to((a.demos_from / "demos").resolve(), target_is_directory=True)
        return {"demos": len(DemoFolder(demos)), "from": str(a.demos_from)}
    stats = run_collect(a.task, a.demos, demos, seed=0, workers=a.workers, cameras=a.cameras,
                        image_size=tuple(a.image_size), progress=False)  # fmt: skip
    return {"demos": len(stats.written), "expert_success": stats.success_rate}


def train(a) -> dict:
    import torch

    from policies.checkpoint import CHECKPOINTS, step_folders
    from policies.train import train as run_train

    torch.set_num_threads(a.threads)
    run = a.out / "run"
    frozen = a.backbone != "none"
    policy = {"network": "mlp", "network_kwargs": {"hidden": a.hidden, "blocks": 3},
              "d_state": a.d_state}  # fmt: skip
    result = run_train(
        a.out / "demos", run, policy=policy, goal=a.goal, state_keys=PROPRIO,
        cameras=[] if frozen else a.cameras, embeddings=a.cameras if frozen else [],
        backbone=a.backbone if frozen else None, steps=a.train_steps,
        backbone_fit=fit_args(a),
        batch_size=a.batch_size, lr=a.lr, warmup_steps=min(200, a.train_steps // 10),
        checkpoint_every=max(1, a.train_steps // 4), progress=False,
        resume=bool(step_folders(run / CHECKPOINTS)),
    )  # fmt: skip
    return {"loss": round(result.loss, 4), "samples_per_s": round(result.samples_per_s),
            "checkpoint": str(result.checkpoint)}  # fmt: skip


def fit_args(a) -> dict | None:
    """The backbone fit's settings from the flags (None: the backbone's defaults)."""
    args = {"steps": a.fit_steps} if a.fit_steps is not None else {}
    if a.fit_brightness:
        args["brightness"] = a.fit_brightness
    return args or None


def evaluate(a, scene=None, name: str = "eval") -> dict:
    import shutil

    from sim.evaluate import EvalSettings
    from sim.evaluate import evaluate as run_eval
    from sim.intervals import rate_text
    from sim.scene import SceneVariant

    out = a.out / name
    if out.exists():
        shutil.rmtree(out)
    settings = EvalSettings(episodes=a.eval_episodes, seed=a.eval_seed, workers=a.workers,
                            videos=2, progress=False, scene=scene or SceneVariant())  # fmt: skip
    res = run_eval(a.out / "run", a.task, out_dir=out, settings=settings)
    info = res.info
    return {"success": rate_text(info["n_success"], info["episodes"]),
            "ci95": info["ci95_success"], "seeds": [a.eval_seed, a.eval_seed + a.eval_episodes - 1],
            "mean_stages": info["mean_stages"], "errors": info["n_errors"]}  # fmt: skip


if __name__ == "__main__":
    main()
