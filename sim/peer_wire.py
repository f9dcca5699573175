"""The peer protocol's wire side, with no uvdiff imports (numpy and the standard library only),
so another stack's venv can load this one file by path and serve its policy::

    spec = importlib.util.spec_from_file_location("peer_wire", UVDIFF / "sim/peer_wire.py")
    wire = importlib.util.module_from_spec(spec); spec.loader.exec_module(wire)
    wire.serve(make_policy, {"state": {...}, "cameras": {...}}, action_dim)

JSON lines over stdin/stdout; arrays as ``{"__array__": [dtype, shape, base64]}``. The
evaluator's side is ``sim.peer.PeerPolicy``.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


def encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
        return {"__array__": [value.dtype.str, list(value.shape), data]}
    if isinstance(value, Mapping):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__array__" in value:
            dtype, shape, data = value["__array__"]
            return np.frombuffer(base64.b64decode(data), dtype=dtype).reshape(shape)
        return {k: decode(v) for k, v in value.items()}
    return value


def serve(
    make_policy: Callable[[], Any], inputs: Mapping[str, Any], action_dim: int, out=None
) -> None:
    """The peer's side: answer uvdiff's requests on stdin/stdout until ``close`` or EOF.
    ``make_policy()`` returns an object with ``reset(seed)`` and ``act(obs) -> action``."""
    out = out or sys.stdout  # ``out``: the real stdout, for a peer that redirected it early
    sys.stdout = sys.stderr  # nothing else may write on the protocol's channel
    policy = make_policy()
    for line in sys.stdin:
        msg = decode(json.loads(line))
        op = msg.get("op")
        try:
            if op == "hello":
                reply: dict[str, Any] = {"inputs": dict(inputs), "action_dim": int(action_dim)}
            elif op == "reset":
                policy.reset(msg.get("seed"))
                reply = {"ok": True}
            elif op == "act":
                reply = {"action": np.asarray(policy.act(msg["obs"]), np.float64).tolist()}
            elif op == "close":
                return
            else:
                reply = {"error": f"unknown op {op!r}"}
        except Exception as e:  # the evaluator counts the episode as failed, with this
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(encode(reply)) + "\n")
        out.flush()
