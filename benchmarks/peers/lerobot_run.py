"""LeRobot's policies on uvdiff's demos, scored by uvdiff-eval: venv, export, check, train, eval.

Optional, outside ``make test``. Each stage is skipped when its output is there (resumable):

  venv    LeRobot's own venv from PyPI: torch first (pinned), then lerobot==0.4.4
  export  ``uvdiff-convert DEMOS --from to-lerobot --layout policy|camera``
          (observation.state, observation.environment_state unless camera, observation.images.*)
  check   LeRobot's own dataset loader and policy config on the export (lerobot_check.py)
  train   LeRobot's own training command, ``lerobot-train --policy.type=diffusion|act``
  eval    ``uvdiff-eval checkpoint=PEER.yaml`` (lerobot_server.py behind the peer protocol)

    .venv/bin/python benchmarks/peers/lerobot_run.py --demos DEMOS --out /tmp/lr \\
        --policy diffusion --steps 2000 --env lift --episodes 50 --seed 3000

``--small`` trains LeRobot's diffusion policy in a config of its own sized for a CPU (UNet
down_dims 128/256/512 instead of 512/1024/2048, a 10-step DDIM sampler instead of 100 DDPM
steps, 50 warmup steps instead of 500, which outlast what a CPU trains in 30 minutes);
``--minutes M`` trains for a wall-clock budget instead of ``--steps``: a 10-step probe measures
LeRobot's seconds per step and the run gets the steps that fit (OUT/budget_<policy>.json keeps
the probe, the steps and the training wall time). ``--train-arg`` passes any other
``lerobot-train`` option through.

ACT's default backbone downloads ImageNet weights; it is trained here with
``--policy.pretrained_backbone_weights=null`` (no download). Videos are decoded with PyAV
(torchcodec needs FFmpeg's shared libraries, which this machine lacks).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TORCH = ["torch==2.9.1", "torchvision==0.24.1"]  # what lerobot 0.4.4 accepts (torch < 2.11)
LEROBOT = "lerobot==0.4.4"
SMALL = {  # LeRobot's own options; its defaults are down_dims (512, 1024, 2048), DDPM, 100 steps
    "diffusion": ["--policy.down_dims=[128,256,512]", "--policy.noise_scheduler_type=DDIM",
                  "--policy.num_inference_steps=10",
                  "--policy.scheduler_warmup_steps=50"],  # its 500 outlast a CPU budget
    "act": ["--policy.dim_model=256", "--policy.dim_feedforward=1024"],
}  # fmt: skip


def run(cmd: list[str], log: Path) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    with open(log, "a") as f:
        done = subprocess.run(list(map(str, cmd)), stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}); see {log}")


def train_command(a, dataset: Path, out: Path, steps: int, *more: str) -> list:
    """LeRobot's own training command for the chosen policy and config."""
    extra = ["--policy.pretrained_backbone_weights=null"] if a.policy == "act" else []
    extra += (SMALL[a.policy] if a.small else []) + a.train_arg + list(more)
    return [a.venv / "bin/lerobot-train", "--dataset.repo_id=local/uvdiff",
            f"--dataset.root={dataset}", "--dataset.video_backend=pyav",
            f"--policy.type={a.policy}", f"--policy.device={a.device}",
            "--policy.push_to_hub=false", f"--steps={steps}", f"--batch_size={a.batch_size}",
            f"--save_freq={steps}", "--num_workers=0", "--wandb.enable=false",
            f"--output_dir={out}", *extra]  # fmt: skip


def probe_step_s(a, dataset: Path, out: Path, log: Path) -> float:
    """Seconds per training step (update + data), from LeRobot's log of a 10-step run; the
    first logged interval (start-up) is left out."""
    if out.exists():
        shutil.rmtree(out)
    probe_log = out.with_suffix(".log")
    probe_log.unlink(missing_ok=True)
    run(train_command(a, dataset, out, 10, "--log_freq=5"), probe_log)
    shutil.rmtree(out, ignore_errors=True)
    times = [float(u) + float(d) for u, d in
             re.findall(r"updt_s:([\d.]+) data_s:([\d.]+)", probe_log.read_text())]  # fmt: skip
    if not times:
        raise SystemExit(f"no step times in {probe_log}; see {log}")
    return times[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demos", type=Path, required=True, help="a uvdiff demo folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--venv", type=Path, default=Path("/tmp/lerobot-venv"))
    p.add_argument("--policy", choices=["diffusion", "act"], default="diffusion")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument(
        "--minutes",
        type=float,
        help="train for this wall-clock budget instead "
        "(steps from a 10-step probe; the issue's 30 state, 60 camera)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--env", default="lift")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="eval workers, each with its own LeRobot process (1: clean timings)",
    )
    p.add_argument("--seed", type=int, default=3000)
    p.add_argument("--device", default="cpu", help="cpu | cuda (the GPU recipe), training and eval")
    p.add_argument("--layout", choices=["policy", "camera"], default="policy",
                   help="export: policy (state + object poses + cameras) or camera (no object "
                   "poses: the camera-only rows)")  # fmt: skip
    p.add_argument("--small", action="store_true", help="a CPU-sized config (see above)")
    p.add_argument(
        "--train-arg",
        action="append",
        default=[],
        metavar="--policy.X=Y",
        help="another lerobot-train option (repeatable)",
    )
    p.add_argument("--until", choices=["venv", "export", "check", "train", "eval"], default="eval")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    log, py = a.out / "run.log", a.venv / "bin" / "python"
    stages = ["venv", "export", "check", "train", "eval"]
    todo = stages[: stages.index(a.until) + 1]
    t0 = time.perf_counter()
    if "venv" in todo and not py.exists():
        run([sys.executable, "-m", "venv", a.venv], log)
        run([py, "-m", "pip", "install", "-q", *TORCH], log)
        run([py, "-m", "pip", "install", "-q", LEROBOT, *TORCH], log)
    dataset = a.out / ("lerobot_dataset" if a.layout == "policy" else f"lerobot_{a.layout}")
    if "export" in todo and not dataset.exists():
        run([ROOT / ".venv/bin/uvdiff-convert", a.demos, dataset, "--from", "to-lerobot",
             "--layout", a.layout, "--no-progress"], log)  # fmt: skip
    if "check" in todo:
        run([py, HERE / "lerobot_check.py", dataset], log)
    name = f"{a.policy}_small" if a.small else a.policy
    train = a.out / f"train_{name}"
    model = train / "checkpoints" / "last" / "pretrained_model"
    if "train" in todo and not model.exists():
        steps, budget = a.steps, {"steps": a.steps}
        if a.minutes:  # as many steps as a 10-step probe says fit the wall-clock budget
            step_s = probe_step_s(a, dataset, a.out / f"probe_{name}", log)
            steps = max(1, int(a.minutes * 60 / step_s))
            budget = {"minutes": a.minutes, "probe_step_s": round(step_s, 3), "steps": steps}
            print(f"probe: {step_s:.2f} s per step -> {steps} steps in {a.minutes} min")
        t = time.perf_counter()
        run(train_command(a, dataset, train, steps), log)
        budget["train_wall_s"] = round(time.perf_counter() - t, 1)
        (a.out / f"budget_{name}.json").write_text(json.dumps(budget, indent=2) + "\n")
    if "eval" in todo:
        spec = a.out / f"peer_{name}.yaml"
        spec.write_text(
            f"command: [{py}, {HERE / 'lerobot_server.py'}, --policy, {model}, "
            f"--dataset, {dataset}, --device, {a.device}]\nname: lerobot {name}\ntimeout: 600\n"
        )
        run([ROOT / ".venv/bin/uvdiff-eval", f"checkpoint={spec}", f"env={a.env}",
             f"episodes={a.episodes}", f"seed={a.seed}", f"workers={a.workers}", "videos=0",
             f"out_dir={a.out / f'eval_{name}'}", "progress=false"], log)  # fmt: skip
    print(f"done in {(time.perf_counter() - t0) / 60:.1f} min; log: {log}")


if __name__ == "__main__":
    main()
