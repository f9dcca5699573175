"""Bridge overhead and the control rates the deploy loop holds over rosbridge, on this CPU.

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_rosbridge.py [--quick]

Starts real peers (rosmaster, the tests' rosbridge server, the simulated arm node) and prints:

1. round trip roslibpy -> bridge -> ROS 1 (TCPROS) -> bridge -> roslibpy, p50/p95, for a 7-D
   Float64MultiArray and a 9-joint JointState at 100 Hz, and a 96x96 rgb8 Image and its JPEG
   at 30 Hz (one way is about half);
2. the deploy loop (RosbridgeRobot, shield, a 3-step state policy) at rising rates against
   the arm node: achieved Hz, stalls (and ticks skipped), p95 of observe/infer/send;
3. the same with an 84x84 image policy (ResNet-18 encoder) on the arm's JPEG camera.

The policies are trained for a couple of steps only: their speed is the point, not their skill.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # for rosrig: the tests' ROS peers (rosmaster, bridge, arm)


def pct(x) -> str:
    x = np.asarray(x) * 1e3
    if not len(x):
        return "n/a"
    return f"p50 {np.percentile(x, 50):.2f} ms, p95 {np.percentile(x, 95):.2f} ms (n={len(x)})"


def echo(port: int, type_: str, make_msg, rate: float, n: int) -> list[float]:
    """Round trips of ``n`` messages published through the bridge and echoed back by ROS."""
    import roslibpy

    ros = roslibpy.Ros("127.0.0.1", port, transport="asyncio")
    ros.run(10)
    topic = f"/bench/{type_.split('/')[-1].lower()}"
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

    sub = roslibpy.Topic(ros, topic, type_)
    sub.subscribe(back)
    pub = roslibpy.Topic(ros, topic, type_)
    pub.advertise()
    time.sleep(1.0)
    period = 1.0 / rate
    nxt = time.perf_counter()
    for k in range(n + 10):
        msg = make_msg(k)
        sent[k] = time.perf_counter()
        pub.publish(roslibpy.Message(msg))
        nxt += period
        time.sleep(max(0.0, nxt - time.perf_counter()))
    done.wait(5)
    sub.unsubscribe()
    pub.unadvertise()
    ros.close()
    return rtt[:n]


def image_msg(k: int, jpeg: bool) -> dict:
    import cv2

    rng = np.random.default_rng(k)
    y, x = np.mgrid[:96, :96]
    img = np.stack([(x + k) % 256, (y + 2 * k) % 256, (x + y) // 2], -1).astype(np.uint8)
    img = (img + rng.integers(0, 8, img.shape)).clip(0, 255).astype(np.uint8)
    header = {"stamp": {"secs": 0, "nsecs": 0}, "frame_id": str(k)}
    if jpeg:
        ok, buf = cv2.imencode(".jpg", img)
        return {"header": header, "format": "jpeg", "data": base64.b64encode(buf).decode()}
    return {
        "header": header,
        "height": 96,
        "width": 96,
        "encoding": "rgb8",
        "is_bigendian": 0,
        "step": 288,
        "data": base64.b64encode(img.tobytes()).decode(),
    }


def checkpoint(root: Path, cameras: bool) -> Path:
    import torch

    from sim.testing import noise_folder, train_checkpoint

    cams = {"agentview": (84, 84)} if cameras else {}
    folder = noise_folder(root / "demo", cams)
    torch.set_num_threads(1)  # the deploy loops below infer on one thread too
    return train_checkpoint(
        folder.root,
        root / "run",
        "none",
        policy={"network": "mlp", "horizon": 8, "n_action_steps": 4, "steps": 3},
        cameras=list(cams),
    )


def loop_rates(port: int, ckpt: Path, rates, ticks: int, cameras: bool) -> list[dict]:
    from hydra import compose, initialize_config_module

    from real.config import RobotSpec
    from real.deploy import deploy, make_robot
    from real.loop import LoopConfig

    overrides = ["robot=rosbridge", f"robot.driver.port={port}", "checkpoint=x"]
    if cameras:
        overrides.append(
            "robot.driver.cameras=[{name: agentview, topic: /camera/image/compressed, "
            "type: sensor_msgs/CompressedImage, size: [84, 84]}]"
        )
    with initialize_config_module("configs", version_base="1.3"):
        cfg = compose("deploy", overrides=overrides)
    rows = []
    for rate in rates:
        spec = RobotSpec.from_config(cfg.robot)
        robot = make_robot(cfg.robot)
        loop = LoopConfig(rate_hz=rate, max_steps=ticks, lost_after=5.0, stop_on_success=False)
        r = deploy(ckpt, robot, spec, loop)
        t = r.timings_ms
        rows.append(
            {
                "rate": rate,
                "achieved_hz": round(r.achieved_hz, 1),
                "stalls": r.overruns,
                "skipped": r.skipped,
                "observe_p95_ms": round(t["observe"]["p95"], 2),
                "infer_p50_ms": round(t["infer"]["p50"], 2),
                "infer_p95_ms": round(t["infer"]["p95"], 2),
                "send_p95_ms": round(t["send"].get("p95", float("nan")), 2),
                "held": r.held,
            }
        )
        print(" ", rows[-1], flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    import logging

    from rosrig import Rig

    logging.getLogger("uvdiff.shield").setLevel(logging.ERROR)  # holds at 100 Hz are expected

    n = 100 if args.quick else 300
    ticks = 100 if args.quick else 300
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig(Path(tmp) / "rig")
        try:
            rig.master()
            port = rig.bridge()
            print("round trips through the bridge and ROS:")
            for name, type_, make, rate in [
                (
                    "float64x7",
                    "std_msgs/Float64MultiArray",
                    lambda k: {
                        "layout": {"dim": [], "data_offset": 0},
                        "data": [float(k)] + [0.1] * 6,
                    },
                    100,
                ),
                (
                    "jointstate9",
                    "sensor_msgs/JointState",
                    lambda k: {
                        "header": {"stamp": {"secs": 0, "nsecs": 0}, "frame_id": str(k)},
                        "name": [f"j{i}" for i in range(9)],
                        "position": [0.1] * 9,
                        "velocity": [],
                        "effort": [],
                    },
                    100,
                ),
                ("image96_rgb8", "sensor_msgs/Image", lambda k: image_msg(k, False), 30),
                ("image96_jpeg", "sensor_msgs/CompressedImage", lambda k: image_msg(k, True), 30),
            ]:
                rtt = echo(port, type_, make, rate, n)
                results[f"rtt_{name}"] = rtt
                print(f"  {name} at {rate} Hz: {pct(rtt)}", flush=True)
            rig.arm("--rate", "50", "--camera", "jpeg")
            state_ckpt = checkpoint(Path(tmp) / "state", cameras=False)
            print("deploy loop, 3-step state policy, arm node at 50 Hz:")
            rates = [20, 50] if args.quick else [20, 30, 50, 75, 100]
            results["loop_state"] = loop_rates(port, state_ckpt, rates, ticks, False)
            image_ckpt = checkpoint(Path(tmp) / "image", cameras=True)
            print("deploy loop, 3-step image policy (84x84 JPEG camera):")
            rates = [10, 15] if args.quick else [10, 15, 20, 30]
            results["loop_image"] = loop_rates(port, image_ckpt, rates, ticks, True)
        finally:
            rig.stop()
    summary = {k: (pct(v) if k.startswith("rtt") else v) for k, v in results.items()}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
