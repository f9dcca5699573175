"""A Zenoh echo node for round-trip timing: every sample on ``<domain>/bench/ping_<kind>/...``
goes straight back on the matching ``pong`` key with its attachment, as an rmw_zenoh node would
republish it. Listens on ``--port``; prints "echo ready"."""

import argparse
import time

import zenoh


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    cfg = zenoh.Config()
    cfg.insert_json5("mode", '"peer"')
    cfg.insert_json5("listen/endpoints", f'["tcp/127.0.0.1:{a.port}"]')
    cfg.insert_json5("scouting/multicast/enabled", "false")
    session = zenoh.open(cfg)

    def back(sample):
        key = str(sample.key_expr)
        if "/bench/ping_" not in key:  # our own pongs come back through the same subscriber
            return
        key = key.replace("/bench/ping_", "/bench/pong_", 1)
        att = sample.attachment.to_bytes() if sample.attachment is not None else None
        session.put(key, sample.payload.to_bytes(), attachment=att, express=True)

    keep = session.declare_subscriber("*/bench/**", back)
    print("echo ready", flush=True)
    while keep is not None:
        time.sleep(1)


if __name__ == "__main__":
    main()
