"""A uvdiff checkpoint served through the peer protocol (``sim.peer``), as another stack's
policy would be: the tests compare its scores with a direct evaluation of the same checkpoint.

    python tests/peers/uvdiff_peer.py CHECKPOINT [--die-at N] [--extra-input KEY] [--sleep-ms MS]
        [--embeddings-as-state]  (asks for its backbone's embeddings as state: embed_with)
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from policies import Policy  # noqa: E402
from sim.peer_wire import serve  # noqa: E402


class Served:
    def __init__(self, checkpoint: str, die_at: int, sleep_ms: float = 0.0):
        self.policy, self.die_at, self.calls = Policy.from_pretrained(checkpoint), die_at, 0
        self.sleep_s = sleep_ms / 1000

    def reset(self, seed):
        self.policy.reset(seed)

    def act(self, obs):
        self.calls += 1
        if self.calls == self.die_at:
            print("peer: simulated crash", file=sys.stderr, flush=True)
            os._exit(3)
        time.sleep(self.sleep_s)  # a slower policy, for the harness's timing
        return self.policy.act(obs)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("--die-at", type=int, default=0)
    p.add_argument("--extra-input", default="")
    p.add_argument("--sleep-ms", type=float, default=0.0)
    p.add_argument("--embeddings-as-state", action="store_true")
    a = p.parse_args()
    cfg = Policy.from_pretrained(a.checkpoint).config
    state = dict(cfg.state)
    if a.embeddings_as_state:  # a peer trained on exported embeddings reads them as state
        state.update(cfg.embeddings)
    if a.extra_input:
        state[a.extra_input] = 3
    inputs = {"state": state, "cameras": {c: list(hw) for c, hw in cfg.cameras.items()}}
    serve(lambda: Served(a.checkpoint, a.die_at, a.sleep_ms), inputs, cfg.action_dim)


if __name__ == "__main__":
    main()
