"""A policy from another stack, scored by ``uvdiff-eval`` on the same seeds: the peer protocol.

The peer runs in its own process (its own venv: LeRobot pins another torch), so neither stack's
dependencies leak into the other. ``uvdiff-eval checkpoint=PEER.yaml`` where the file says how
to start it::

    command: [/opt/lerobot-venv/bin/python, benchmarks/peers/lerobot_server.py, --checkpoint, RUN]
    name: lerobot diffusion          # for reports (default: the file's name)

The protocol is JSON lines over the peer's stdin/stdout; arrays travel as
``{"__array__": [dtype, shape, base64]}``. uvdiff sends ``{"op": "hello"}`` and the peer answers
with what it reads and emits: ``{"inputs": {"state": {key: dim}, "cameras": {name: [h, w]}},
"action_dim": A}``, checked against the env before any episode runs (a missing key is named).
Then ``{"op": "reset", "seed": s}`` at each episode start and ``{"op": "act", "obs": {...}}``
each step, answered ``{"action": [...]}`` (or ``{"error": "..."}``). A peer that dies fails
the episode it was in, with its exit status and last stderr lines, and is restarted for the
next one. The peer side is ``sim.peer_wire.serve``.

Matched features: with ``embed_with: RUN`` (a uvdiff checkpoint or run trained on a frozen
backbone's embeddings), the state keys ``<camera>_emb`` the peer asks for are computed here from
the camera's frames by that checkpoint's backbone, so both stacks' policies read the same
embeddings (``benchmarks/peers/embed_export.py`` exports the demos with them).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SimError
from .peer_wire import decode, encode


class PeerError(SimError):
    """The peer process failed or broke the protocol; the message says how."""


def is_peer_spec(checkpoint: str | os.PathLike) -> bool:
    return Path(checkpoint).suffix in (".yaml", ".yml", ".json") and Path(checkpoint).is_file()


@dataclass
class PeerConfig:
    """What the peer said it reads and emits, shaped like the ``PolicyConfig`` fields the
    evaluator checks (a peer is goal-free and embeds its cameras itself)."""

    state: dict[str, int]
    cameras: dict[str, list[int]]
    action_dim: int
    embeddings: dict[str, int] = field(default_factory=dict)
    backbone: dict[str, Any] | None = None  # with embed_with: the uvdiff checkpoint's record
    uses_goal: bool = False


class BackboneEmbeddings:
    """Camera frames -> the frozen backbone embeddings a uvdiff checkpoint was trained on."""

    def __init__(self, checkpoint: Path):
        from policies.checkpoint import CheckpointError, load_config, resolve

        try:
            self.ckpt = resolve(checkpoint)
            cfg, _ = load_config(self.ckpt)
        except (CheckpointError, OSError) as e:
            raise PeerError(f"embed_with: {e}") from None
        if not cfg.backbone:
            raise PeerError(f"embed_with: {self.ckpt} was not trained on backbone embeddings")
        self.record = cfg.backbone
        self.dims = dict(cfg.embeddings)
        self._embedders: dict[str, Any] = {}

    def __call__(self, camera: str, frame: np.ndarray) -> np.ndarray:
        from policies.embeddings import load_embedder
        from policies.frames import fit_frame

        if camera not in self._embedders:
            self._embedders[camera] = load_embedder(self.ckpt, self.record, camera)
        size = self.record["cameras"][camera].get("size")
        frame = fit_frame(frame, size, camera) if size else np.asarray(frame)
        return self._embedders[camera].embed(frame[None])[0]


class PeerPolicy:
    """The evaluator's side: a ``Policy``-like object backed by the peer process."""

    def __init__(self, spec: str | os.PathLike, timeout: float = 120.0):
        import yaml

        self.spec = Path(spec)
        doc = yaml.safe_load(self.spec.read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("command"), list):
            raise PeerError(f"{self.spec}: needs 'command': [program, args...]")
        self.command = [str(c) for c in doc["command"]]
        self.name = str(doc.get("name") or self.spec.stem)
        self.timeout = float(doc.get("timeout", timeout))
        self.settings: dict[str, Any] = {"sampler": doc.get("sampler", "peer"),
                                         "steps": doc.get("steps")}  # fmt: skip
        self.handover = False  # a peer's chunking is its own
        self._proc: subprocess.Popen | None = None
        self._stderr: deque[str] = deque(maxlen=20)
        hello = self._call({"op": "hello"})
        try:
            inputs = hello["inputs"]
            self.config = PeerConfig(
                {k: int(d) for k, d in (inputs.get("state") or {}).items()},
                {c: [int(x) for x in hw] for c, hw in (inputs.get("cameras") or {}).items()},
                int(hello["action_dim"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as e:
            raise PeerError(f"{self.spec}: the peer's hello lacks {e} ({hello})") from None
        self.embeddings: BackboneEmbeddings | None = None
        self._embedded: dict[str, str] = {}  # embedding key -> camera, served by embed_with
        if doc.get("embed_with"):
            try:
                self._embed_with(self.spec.parent / str(doc["embed_with"]))
            except PeerError:
                self.close()
                raise

    def _embed_with(self, checkpoint: Path) -> None:
        """Serve the peer's ``<camera>_emb`` keys from the checkpoint's backbone."""
        from policies.embeddings import embedding_key

        self.embeddings = BackboneEmbeddings(checkpoint)
        offered = {embedding_key(c): c for c in self.embeddings.record["cameras"]}
        cfg = self.config
        for key in [k for k in cfg.state if k in offered]:
            cfg.embeddings[key] = cfg.state.pop(key)
            given = self.embeddings.dims.get(key, cfg.embeddings[key])
            if cfg.embeddings[key] != given:
                raise PeerError(f"{self.spec}: the peer reads {key} with {cfg.embeddings[key]} "
                                f"numbers, embed_with gives {given}")  # fmt: skip
        cfg.backbone = {**self.embeddings.record, "cameras": {
            offered[k]: self.embeddings.record["cameras"][offered[k]] for k in cfg.embeddings
        }}  # fmt: skip
        self._embedded = {k: offered[k] for k in cfg.embeddings}

    # ------------------------------------------------------------------ the process
    def _start(self) -> subprocess.Popen:
        try:
            proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, bufsize=1)  # fmt: skip
        except OSError as e:
            raise PeerError(f"{self.spec}: cannot start {self.command[0]}: {e}") from None

        def drain(stream=proc.stderr):
            for line in stream:
                self._stderr.append(line.rstrip())

        threading.Thread(target=drain, daemon=True).start()
        return proc

    def _call(self, msg: dict) -> dict:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        proc = self._proc
        try:
            proc.stdin.write(json.dumps(encode(msg)) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            while line and not line.startswith("{"):  # a library's print on the channel
                self._stderr.append("stdout: " + line.rstrip())
                line = proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            code = proc.wait(timeout=10)
            self._proc = None
            tail = " | ".join(list(self._stderr)[-3:])
            raise PeerError(f"peer {self.name} exited (status {code}) during {msg['op']}: {tail}")
        reply = decode(json.loads(line))
        if "error" in reply:
            raise PeerError(f"peer {self.name}: {reply['error']}")
        return reply

    # ------------------------------------------------------------------ Policy's interface
    def reset(self, seed: int | None = None) -> None:
        self._call({"op": "reset", "seed": seed})

    def act(self, obs: Mapping[str, Any], goal: Any = None) -> np.ndarray:
        keys = [*self.config.state, *self.config.cameras]
        sent = {k: np.asarray(obs[k]) for k in keys}
        for key, camera in self._embedded.items():
            sent[key] = self.embeddings(camera, obs[camera])
        reply = self._call({"op": "act", "obs": sent})
        action = np.asarray(reply["action"], dtype=np.float32)
        if action.shape != (self.config.action_dim,):
            raise PeerError(f"peer {self.name} sent an action of shape {action.shape}, "
                            f"expected ({self.config.action_dim},)")  # fmt: skip
        return action

    def reads_next_observation(self) -> bool:
        return True  # the peer decides when it plans: render every frame

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.write(json.dumps({"op": "close"}) + "\n")
                proc.stdin.flush()
                proc.wait(timeout=5)
            except Exception:
                proc.kill()


def load_policy(checkpoint: str | os.PathLike, overrides: Mapping[str, Any]):
    """The policy an episode runs: a uvdiff checkpoint, or a peer process."""
    if is_peer_spec(checkpoint):
        return PeerPolicy(checkpoint)
    from policies import Policy

    return Policy.from_pretrained(checkpoint, **overrides)
