"""ROS 2 over DDS against rosbridge, in the same run: round trips and deploy-loop rates.

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_dds.py [--quick] [--no-rosbridge]

1. Round trip on loopback: ``DdsTransport`` publishes, an echo node in its own process (its own
   type declarations) sends each sample straight back, p50/p95 for a 7-D Float64MultiArray and
   a 9-joint JointState at 100 Hz and a 96x96 rgb8 Image at 30 Hz. Beside it, the same over
   Zenoh as rmw_zenoh carries it (``ZenohTransport`` against a Zenoh echo node), and through
   rosbridge and ROS 1 (``bench_rosbridge.echo``), unless ``--no-rosbridge``.
2. The deploy loop over DDS (``DdsRobot``, shield, a 3-step state policy; then an 84x84 image
   policy on the arm's raw camera) against the DDS arm node at 50 Hz, at rising rates.

The policies are trained for a couple of steps: their speed is the point, not their skill.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "rosrig"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_rosbridge import checkpoint, pct  # noqa: E402


def start(args: list[str], ready: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if line != ready:
        p.kill()
        raise SystemExit(f"{args[0]} did not start ({line!r})")
    return p


def messages(kind: str, k: int) -> dict:
    if kind == "float64x7":
        return {"data": [float(k)] + [0.1] * 6}
    if kind == "jointstate9":
        return {"header": {"frame_id": str(k)}, "name": [f"j{i}" for i in range(9)],
                "position": [0.1] * 9}  # fmt: skip
    y, x = np.mgrid[:96, :96]
    img = np.stack([(x + k) % 256, (y + 2 * k) % 256, (x + y) // 2], -1).astype(np.uint8)
    return {"header": {"frame_id": str(k)}, "height": 96, "width": 96, "encoding": "rgb8",
            "step": 288, "data": img.tobytes()}  # fmt: skip


def round_trip(link, kind: str, type_: str, rate: float, n: int) -> list[float]:
    """Round trips of ``n`` messages through a connected transport and an echo node that sends
    ``/bench/ping_<kind>`` back on ``/bench/pong_<kind>``; the link is closed after."""
    sent: dict[int, float] = {}
    rtt: list[float] = []
    done = threading.Event()

    def back(msg):
        k = int(msg["header"]["frame_id"]) if "header" in msg else int(msg["data"][0])
        t0 = sent.pop(k, None)
        if t0 is not None:
            rtt.append(time.perf_counter() - t0)
        if len(rtt) >= n:
            done.set()

    link.subscribe(f"/bench/pong_{kind}", type_, back)
    link.advertise(f"/bench/ping_{kind}", type_)
    time.sleep(1.0)  # discovery
    for k in range(20):  # warm the route up: the first samples wait for it to be set up
        link.publish(f"/bench/ping_{kind}", messages(kind, 10_000 + k))
        time.sleep(0.05)
    time.sleep(1.0)
    period, nxt = 1.0 / rate, time.perf_counter()
    for k in range(n + 10):
        sent[k] = time.perf_counter()
        link.publish(f"/bench/ping_{kind}", messages(kind, k))
        nxt += period
        time.sleep(max(0.0, nxt - time.perf_counter()))
    done.wait(5)
    link.close()
    return rtt[:n]


def dds_link(domain: int):
    from dds_types import LOOPBACK

    from real.dds import DdsTransport
    from real.ros_topics import Reconnect

    link = DdsTransport(domain, config=LOOPBACK)
    link.connect(5.0, Reconnect.from_config(None), lambda: None, lambda text: None)
    return link


def zenoh_link(port: int):
    """``ZenohTransport`` with rmw_zenoh's keys (Jazzy) and attachments, to the echo node."""
    from real.ros_topics import Reconnect
    from real.zenoh_link import ZenohTransport

    link = ZenohTransport(0, connect=[f"tcp/127.0.0.1:{port}"])
    link.connect(5.0, Reconnect.from_config(None), lambda: None, lambda text: None)
    return link


def loop_rates(domain: int, ckpt: Path, rates, ticks: int, cameras: bool) -> list[dict]:
    import yaml
    from dds_types import LOOPBACK
    from omegaconf import OmegaConf

    from real.config import RobotSpec
    from real.deploy import deploy, make_robot
    from real.loop import LoopConfig

    doc = yaml.safe_load((ROOT / "configs" / "robot" / "panda_dds.yaml").read_text())
    doc["driver"].update(domain_id=domain, config=LOOPBACK)
    doc["driver"]["state"].append({"key": "object", "topic": "/uvdiff/object_state",
                                   "type": "std_msgs/msg/Float64MultiArray"})  # fmt: skip
    if cameras:
        camera = {"name": "agentview", "topic": "/camera/image", "type": "sensor_msgs/msg/Image",
                  "size": [84, 84]}  # fmt: skip
        doc["driver"]["cameras"] = [camera]
    doc["shield"]["enabled"] = True
    cfg = OmegaConf.create(doc)
    rows = []
    for rate in rates:
        loop = LoopConfig(rate_hz=rate, max_steps=ticks, lost_after=5.0, stop_on_success=False)
        r = deploy(ckpt, make_robot(cfg), RobotSpec.from_config(cfg), loop)
        t = r.timings_ms
        rows.append({"rate": rate, "achieved_hz": round(r.achieved_hz, 1), "stalls": r.overruns,
                     "skipped": r.skipped, "observe_p95_ms": round(t["observe"]["p95"], 2),
                     "infer_p50_ms": round(t["infer"]["p50"], 2),
                     "infer_p95_ms": round(t["infer"]["p95"], 2),
                     "send_p95_ms": round(t["send"].get("p95", float("nan")), 2),
                     "held": r.held})  # fmt: skip
        print(" ", rows[-1], flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-rosbridge", action="store_true")
    a = p.parse_args()
    import logging

    logging.getLogger("uvdiff.shield").setLevel(logging.ERROR)
    n = 100 if a.quick else 300
    ticks = 100 if a.quick else 300
    kinds = [("float64x7", "std_msgs/msg/Float64MultiArray", 100),
             ("jointstate9", "sensor_msgs/msg/JointState", 100),
             ("image96_rgb8", "sensor_msgs/msg/Image", 30)]  # fmt: skip
    results: dict = {}
    domain = random.randrange(100, 200)
    procs = [start([str(ROOT / "tests/rosrig/dds_echo.py"), "--domain", str(domain)], "echo ready")]
    try:
        print(f"round trips over DDS (domain {domain}, loopback):")
        for kind, type_, rate in kinds:
            rtt = round_trip(dds_link(domain), kind, type_, rate, n)
            results[f"dds_rtt_{kind}"] = rtt
            print(f"  {kind} at {rate} Hz: {pct(rtt)}", flush=True)
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        procs.append(start([str(ROOT / "tests/rosrig/zenoh_echo.py"), "--port", str(port)],
                           "echo ready"))  # fmt: skip
        print("round trips over Zenoh (rmw_zenoh's keys and attachments, loopback):")
        for kind, type_, rate in kinds:
            rtt = round_trip(zenoh_link(port), kind, type_, rate, n)
            results[f"zenoh_rtt_{kind}"] = rtt
            print(f"  {kind} at {rate} Hz: {pct(rtt)}", flush=True)
        if not a.no_rosbridge:
            from bench_rosbridge import echo, image_msg
            from rosrig import Rig

            with tempfile.TemporaryDirectory() as tmp:
                rig = Rig(Path(tmp) / "rig")
                try:
                    rig.master()
                    port = rig.bridge()
                    print("the same through rosbridge and ROS 1:")
                    for kind, type_, make, rate in [
                        ("float64x7", "std_msgs/Float64MultiArray",
                         lambda k: {"layout": {"dim": [], "data_offset": 0},
                                    "data": [float(k)] + [0.1] * 6}, 100),
                        ("jointstate9", "sensor_msgs/JointState",
                         lambda k: {"header": {"stamp": {"secs": 0, "nsecs": 0},
                                               "frame_id": str(k)},
                                    "name": [f"j{i}" for i in range(9)], "position": [0.1] * 9,
                                    "velocity": [], "effort": []}, 100),
                        ("image96_rgb8", "sensor_msgs/Image", lambda k: image_msg(k, False), 30),
                    ]:  # fmt: skip
                        rtt = echo(port, type_, make, rate, n)
                        results[f"rosbridge_rtt_{kind}"] = rtt
                        print(f"  {kind} at {rate} Hz: {pct(rtt)}", flush=True)
                finally:
                    rig.stop()
        arm = [str(ROOT / "tests/rosrig/dds_arm_node.py"), "--domain", str(domain), "--rate", "50",
               "--camera"]  # fmt: skip
        procs.append(start(arm, "arm ready"))
        with tempfile.TemporaryDirectory() as tmp:
            print("deploy loop over DDS, 3-step state policy, arm node at 50 Hz:")
            rates = [20, 50] if a.quick else [20, 30, 50, 75, 100]
            state = checkpoint(Path(tmp) / "state", cameras=False)
            results["dds_loop_state"] = loop_rates(domain, state, rates, ticks, False)
            print("deploy loop over DDS, 3-step image policy (84x84 raw camera):")
            rates = [10, 15] if a.quick else [10, 15, 20, 30]
            image = checkpoint(Path(tmp) / "image", cameras=True)
            results["dds_loop_image"] = loop_rates(domain, image, rates, ticks, True)
    finally:
        for proc in procs:
            proc.kill()
    summary = {k: (pct(v) if "rtt" in k else v) for k, v in results.items()}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
