"""A demo folder whose cameras are replaced by a uvdiff run's frozen backbone embeddings: the
matched-features row of issue 20 (both stacks' policies on the same embeddings).

    .venv/bin/python benchmarks/peers/embed_export.py DEMOS RUN OUT
    .venv/bin/uvdiff-convert OUT LEROBOT --from to-lerobot --layout policy

OUT keeps the robot's state keys the run reads (no object poses) and adds ``<camera>_emb``
(T, D) per camera of the run's backbone, from the demo folder's embedding cache (filled where
stale); LeRobot's export puts them in ``observation.environment_state``. Evaluate the LeRobot
policy with ``embed_with: RUN`` in its PEER.yaml, so the harness embeds the rendered frames with
the same backbone (``sim.peer``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def export(demos: Path, run: Path, out: Path, progress: bool = True) -> Path:
    """Write OUT (a new demo folder, atomically) and return it."""
    from tqdm.auto import tqdm

    from decomposer.embed_cache import episode_embeddings
    from demos import DatasetInfo, DemoFolder, Episode
    from demos.atomic import staging_dir
    from policies.checkpoint import load_config, resolve
    from policies.embeddings import embedding_key, load_embedder

    folder = DemoFolder(demos)
    ckpt = resolve(run)
    cfg, _ = load_config(ckpt)
    if not cfg.backbone:
        raise SystemExit(f"{ckpt}: trained on no backbone embeddings; nothing to match")
    cameras = list(cfg.backbone["cameras"])
    encoders = {cam: load_embedder(ckpt, cfg.backbone, cam) for cam in cameras}
    robot = {k: d for k, d in folder.info.state.items() if k in cfg.state}
    dims = {embedding_key(cam): cfg.embeddings[embedding_key(cam)] for cam in cameras}
    src = folder.info
    info = DatasetInfo(fps=src.fps, action_dim=src.action_dim, state={**robot, **dims},
                       robot=src.robot, action_name=src.action_name,
                       action_kind=src.action_kind, tasks=list(src.tasks))  # fmt: skip
    with staging_dir(out) as tmp:
        target = DemoFolder.create(tmp, info)
        for ep in tqdm(folder.episode_ids, desc="embed and copy", disable=not progress):
            low = folder.read_lowdim(ep)
            state = {k: low[k] for k in robot}
            for cam, enc in encoders.items():
                state[embedding_key(cam)] = episode_embeddings(folder, ep, enc, cam)
            task = src.tasks[int(low["task_index"])] if "task_index" in low else None
            target.add_episode(Episode(action=low["action"], state=state, task=task))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("demos", type=Path, help="the demo folder the run was trained on")
    p.add_argument("run", type=Path, help="a uvdiff run or checkpoint on backbone embeddings")
    p.add_argument("out", type=Path, help="the new demo folder (must not exist)")
    a = p.parse_args()
    print(f"wrote {export(a.demos, a.run, a.out)}")


if __name__ == "__main__":
    main()
