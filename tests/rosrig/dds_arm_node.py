"""A ROS 2-style DDS node that is a simulated Panda (``sim.robot.SimRobot``), for the DDS tests.

Its wire code is cyclonedds with its own type declarations (``dds_types``), never
``real.ros2_msgs``. On ROS 2's topic names (``rt/...``), stamped, at ``--rate`` Hz:
``/joint_states`` (JointState), ``/uvdiff/eef_pose`` (PoseStamped), ``/uvdiff/success`` (Bool),
``/uvdiff/object_state`` (Float64MultiArray: the simulator's object poses, for state policies)
and with ``--camera`` ``/camera/image`` (Image rgb8, sensor-data QoS: best effort). Obeys
``/uvdiff/command`` (Float64MultiArray, the 7-D OSC delta; a step without a command holds).
``--estop-after N`` publishes ``/uvdiff/estop`` true after N commands; ``--call-estop-after N``
calls the ``/uvdiff/estop_trigger`` service instead (rmw_cyclonedds' request header).
``--status FILE``: a JSON summary after every step. ``--vanish-at S --return-after R``:
the node's participant leaves at step S and comes back R seconds later. ``--garble-every N``:
every Nth step also writes a JointState whose bytes do not decode. ``--clock-jump-at N
--clock-jump-by S``: from the Nth publication on, header stamps are S seconds in the past.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from cyclonedds.core import Listener, Policy, Qos  # noqa: E402
from cyclonedds.domain import Domain, DomainParticipant  # noqa: E402
from cyclonedds.pub import DataWriter  # noqa: E402
from cyclonedds.sub import DataReader  # noqa: E402
from cyclonedds.topic import Topic  # noqa: E402
from cyclonedds.util import duration  # noqa: E402
from dds_types import (  # noqa: E402
    LOOPBACK,
    Doubles,
    Flag,
    Hdr,
    Joints,
    PoseOnly,
    Quat,
    RawImage,
    Stamp,
    StampedPose,
    TriggerAnswer,
    TriggerCall,
    Vec3,
)

from sim.robot import SimRobot  # noqa: E402

ARM = [f"panda_joint{i}" for i in range(1, 8)]
FINGERS = ["panda_finger_joint1", "panda_finger_joint2"]
RELIABLE = Qos(Policy.Reliability.Reliable(duration(milliseconds=100)), Policy.History.KeepLast(10))
SENSOR = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(5))


def stamp_now(offset: float = 0.0) -> Hdr:
    t = time.time() + offset
    return Hdr(stamp=Stamp(sec=int(t), nanosec=int((t % 1) * 1e9)), frame_id="world")


def garbled(sample: Joints) -> Joints:
    """``sample`` whose CDR passes DDS's checks but does not decode (a name that is not
    UTF-8): what a node with a broken serialiser or another definition would send."""
    raw = sample.serialize().replace(b"bad\x00", b"\xff\xfe\xfd\x00")
    sample.serialize = lambda use_version_2=False: raw
    return sample


class DdsArm:
    def __init__(self, args):
        self.args, self.published = args, 0
        self.robot = SimRobot(args.env, seed=args.seed)
        self.robot.connect()
        raw = self.robot.env.raw
        self.qpos = raw.sim.data.qpos
        rb = raw.robots[0]
        self.q_idx = list(rb._ref_joint_pos_indexes)
        self.g_idx = list(rb._ref_gripper_joint_pos_indexes["right"])
        self.lock = threading.Lock()
        self.pending, self.gripper = None, -1.0
        self.commands = self.applied = self.best_stage = 0
        self.success, self.estop_at, self.estop_reply = False, None, None
        self.join()

    def join(self) -> None:
        dp = self.dp = DomainParticipant(self.args.domain)

        def writer(name, cls, qos=RELIABLE):
            return DataWriter(dp, Topic(dp, "rt" + name, cls), qos=qos)

        self.w = {
            "joints": writer("/joint_states", Joints),
            "pose": writer("/uvdiff/eef_pose", StampedPose),
            "success": writer("/uvdiff/success", Flag),
            "object": writer("/uvdiff/object_state", Doubles),
            "estop": writer("/uvdiff/estop", Flag),
        }
        if self.args.camera:
            self.w["image"] = writer("/camera/image", RawImage, SENSOR)
        self.cmd = DataReader(dp, Topic(dp, "rt/uvdiff/command", Doubles), qos=RELIABLE,
                              listener=Listener(on_data_available=self.on_command))  # fmt: skip
        self.call = DataWriter(dp, Topic(dp, "rq/uvdiff/estop_triggerRequest", TriggerCall),
                               qos=RELIABLE)  # fmt: skip
        answers = Topic(dp, "rr/uvdiff/estop_triggerReply", TriggerAnswer)
        self.answers = DataReader(dp, answers, qos=RELIABLE,
                                  listener=Listener(on_data_available=self.on_answer))  # fmt: skip

    def leave(self) -> None:
        self.dp.__del__()  # the participant and its endpoints leave the graph

    def on_command(self, reader) -> None:
        for msg in reader.take(N=32):
            if not isinstance(msg, Doubles):
                continue
            a = np.asarray(msg.data, dtype=np.float64)
            with self.lock:
                self.commands += 1
                if a.shape == (7,) and np.isfinite(a).all():
                    self.pending = a
                n = self.commands
            if n == self.args.estop_after and self.estop_at is None:
                self.estop_at = time.time()
                self.w["estop"].write(Flag(data=True))
            if n == self.args.call_estop_after and self.estop_at is None:
                self.estop_at = time.time()
                self.call.write(TriggerCall(client_guid=0x1234, sequence=1))

    def on_answer(self, reader) -> None:
        for msg in reader.take(N=4):
            if isinstance(msg, TriggerAnswer):
                self.estop_reply = [msg.client_guid, msg.sequence, msg.success, msg.message]

    def step(self) -> None:
        with self.lock:
            a, self.pending = self.pending, None
        if a is None:
            a = np.zeros(7)
            a[6] = self.gripper
        else:
            self.gripper = a[6]
            self.applied += 1
        self.robot.command(a)
        obs = self.robot.observe()
        self.best_stage = max(self.best_stage, int(obs.info.get("stage", 0)))
        self.success = self.success or bool(obs.info.get("success"))
        self.publish(obs)

    def publish(self, obs) -> None:
        self.published += 1
        jump = self.args.clock_jump_at and self.published >= self.args.clock_jump_at
        hdr = stamp_now(-self.args.clock_jump_by if jump else 0.0)
        q = self.qpos
        pos = [float(x) for x in (*q[self.q_idx], *q[self.g_idx])]
        self.w["joints"].write(Joints(header=hdr, name=ARM + FINGERS, position=pos))
        if self.args.garble_every and self.published % self.args.garble_every == 0:
            self.w["joints"].write(garbled(Joints(header=hdr, name=["bad"], position=[0.0])))
        p, o = (list(map(float, obs.state[k])) for k in ("eef_pos", "eef_quat"))
        pose = PoseOnly(position=Vec3(*p), orientation=Quat(*o))
        self.w["pose"].write(StampedPose(header=hdr, pose=pose))
        self.w["success"].write(Flag(data=bool(obs.info.get("success"))))
        self.w["object"].write(Doubles(data=[float(x) for x in obs.state["object"]]))
        if self.args.camera:
            h, w = self.args.image_size
            frame = self.robot.env.render("agentview", (h, w))
            self.w["image"].write(RawImage(header=hdr, height=h, width=w, encoding="rgb8",
                                           step=3 * w, data=frame.tobytes()))  # fmt: skip

    def write_status(self) -> None:
        if not self.args.status:
            return
        doc = {"commands": self.commands, "applied": self.applied, "success": self.success,
               "stage": self.best_stage, "estop_at": self.estop_at,
               "estop_reply": self.estop_reply, "pid": os.getpid()}  # fmt: skip
        tmp = self.args.status + ".tmp"
        Path(tmp).write_text(json.dumps(doc))
        os.replace(tmp, self.args.status)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="lift")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--domain", type=int, default=0)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--camera", action="store_true")
    p.add_argument("--image-size", type=int, nargs=2, default=[84, 84])
    p.add_argument("--estop-after", type=int, default=0)
    p.add_argument("--call-estop-after", type=int, default=0)
    p.add_argument("--vanish-at", type=int, default=0)
    p.add_argument("--return-after", type=float, default=1.0)
    p.add_argument("--status", default="")
    p.add_argument("--garble-every", type=int, default=0)
    p.add_argument("--clock-jump-at", type=int, default=0)
    p.add_argument("--clock-jump-by", type=float, default=30.0)
    args = p.parse_args()
    domain = Domain(args.domain, LOOPBACK)  # kept: the configuration lives as long as it
    node = DdsArm(args)
    node.domain = domain
    node.publish(node.robot.observe())
    node.write_status()
    print("arm ready", flush=True)
    period, nxt, steps = 1.0 / args.rate, time.monotonic(), 0
    while True:
        node.step()
        node.write_status()
        steps += 1
        if steps == args.vanish_at:
            node.leave()
            time.sleep(args.return_after)
            node.join()
        nxt += period
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            nxt = time.monotonic()


if __name__ == "__main__":
    main()
