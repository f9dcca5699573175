"""A ROS 2-style ``control_msgs/action/FollowJointTrajectory`` server over DDS, for the action
tests: a joint_trajectory_controller in miniature on a simulated arm of ``--joints``.

Its wire code is cyclonedds with its own declarations (``dds_types``), never ``real.*``. On
ROS 2's names for the action ``--action``: the services ``rq/<action>/_action/{send_goal,
get_result,cancel_goal}Request`` (answers on ``rr/...Reply``, echoing rmw_cyclonedds' request
header), the topics ``rt/<action>/_action/feedback`` and ``.../status`` (transient local);
and ``/joint_states`` at 50 Hz. Like the controller it accepts a goal whose joint names are
its joints (else rejects), preempts the goal under way when a new one is accepted (CANCELED,
INVALID_GOAL), moves the joints linearly to the last point over its ``time_from_start``
(``--duration`` overrides), publishes feedback meanwhile, then SUCCEEDED; get_result is
answered when the goal ends. ``--limit L``: a goal past |L| rad is aborted halfway with
PATH_TOLERANCE_VIOLATED. ``--estop-after N`` publishes ``/uvdiff/estop`` true after the Nth
accepted goal. ``--mute``: requests are read, never answered. ``--layout rolling``: feedback
in control_msgs 6.3+'s layout. ``--status FILE``: JSON of what it got, after every change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cyclonedds.core import Listener, Policy, Qos  # noqa: E402
from cyclonedds.domain import Domain, DomainParticipant  # noqa: E402
from cyclonedds.pub import DataWriter  # noqa: E402
from cyclonedds.sub import DataReader  # noqa: E402
from cyclonedds.topic import Topic  # noqa: E402
from cyclonedds.util import duration  # noqa: E402
from dds_types import (  # noqa: E402
    LOOPBACK,
    CancelAnswer,
    CancelCall,
    FeedbackMsg,
    FeedbackMsgIdx,
    FjtFeedback,
    FjtFeedbackIdx,
    FjtResult,
    Flag,
    GoalAnswer,
    GoalCall,
    GoalInf,
    GoalStat,
    GoalStats,
    GoalUuid,
    Hdr,
    Joints,
    ResultAnswer,
    ResultCall,
    Stamp,
    TrajPoint,
)

RELIABLE = Qos(Policy.Reliability.Reliable(duration(milliseconds=100)), Policy.History.KeepLast(10))
LATCHED = Qos(Policy.Reliability.Reliable(duration(milliseconds=100)), Policy.History.KeepLast(1),
              Policy.Durability.TransientLocal)  # fmt: skip
ACCEPTED, EXECUTING, SUCCEEDED, CANCELED, ABORTED = 1, 2, 4, 5, 6
PANDA = [f"panda_joint{i}" for i in range(1, 8)]


def now_stamp() -> Stamp:
    t = time.time()
    return Stamp(sec=int(t), nanosec=int((t % 1) * 1e9))


class Goal:
    def __init__(self, gid: bytes, start: list[float], target: list[float], span: float):
        self.id, self.start, self.target, self.span = gid, start, target, max(span, 1e-3)
        self.t0, self.state, self.result = time.monotonic(), EXECUTING, None
        self.info = GoalInf(goal_id=GoalUuid(uuid=gid), stamp=now_stamp())


class FjtServer:
    def __init__(self, args):
        self.args, self.lock = args, threading.Lock()
        self.joints = list(args.joints)
        self.q = [0.0] * len(self.joints)
        self.goals: dict[bytes, Goal] = {}
        self.active: Goal | None = None
        self.waiting: dict[bytes, list[tuple[int, int]]] = {}  # goal -> get_result headers
        self.log = {"requests": [], "accepted": 0, "rejected": 0, "cancels": [], "results": [],
                    "feedback": 0, "estop_at": None, "pid": os.getpid()}  # fmt: skip
        self.dirty = True
        dp = self.dp = DomainParticipant(args.domain)
        base = args.action.strip("/") + "/_action/"

        self.readers = []  # kept: a reader nothing refers to is deleted

        def serve(name, req, rep, handler):
            topic = Topic(dp, f"rq/{base}{name}Request", req)
            listener = Listener(on_data_available=handler)
            self.readers.append(DataReader(dp, topic, qos=RELIABLE, listener=listener))
            return DataWriter(dp, Topic(dp, f"rr/{base}{name}Reply", rep), qos=RELIABLE)

        self.goal_w = serve("send_goal", GoalCall, GoalAnswer, self.on_goal)
        self.result_w = serve("get_result", ResultCall, ResultAnswer, self.on_result)
        self.cancel_w = serve("cancel_goal", CancelCall, CancelAnswer, self.on_cancel)
        fb = FeedbackMsgIdx if args.layout == "rolling" else FeedbackMsg
        self.fb_cls = (fb, FjtFeedbackIdx if args.layout == "rolling" else FjtFeedback)
        self.feedback_w = DataWriter(dp, Topic(dp, f"rt/{base}feedback", fb), qos=RELIABLE)
        self.status_w = DataWriter(dp, Topic(dp, f"rt/{base}status", GoalStats), qos=LATCHED)
        self.joints_w = DataWriter(dp, Topic(dp, "rt/joint_states", Joints), qos=RELIABLE)
        self.estop_w = DataWriter(dp, Topic(dp, "rt/uvdiff/estop", Flag), qos=RELIABLE)

    # ---------------------------------------------------------------- services
    def on_goal(self, reader) -> None:
        for call in reader.take(N=16):
            if not isinstance(call, GoalCall):
                continue
            traj = call.goal.trajectory
            gid = bytes(call.goal_id.uuid)
            with self.lock:
                points = [list(p.positions) for p in traj.points]
                entry = {"id": gid.hex(), "joints": list(traj.joint_names), "points": points}
                self.log["requests"].append(entry)
                self.dirty = True
                if self.args.mute:
                    continue
                ok = self.valid(traj)
                if ok:
                    self.accept(gid, traj)
                self.log["accepted" if ok else "rejected"] += 1
                n = self.log["accepted"]
            self.goal_w.write(GoalAnswer(client_guid=call.client_guid, sequence=call.sequence,
                                         accepted=ok, stamp=now_stamp()))  # fmt: skip
            if ok and n == self.args.estop_after and self.log["estop_at"] is None:
                self.log["estop_at"] = time.time()
                self.estop_w.write(Flag(data=True))
            self.publish_status()

    def valid(self, traj) -> bool:
        if sorted(traj.joint_names) != sorted(self.joints) or not traj.points:
            return False
        return all(len(p.positions) == len(self.joints) for p in traj.points)

    def accept(self, gid: bytes, traj) -> None:
        """Under the lock: the new goal preempts the one under way, as the controller does."""
        if self.active is not None and self.active.state == EXECUTING:
            self.finish(self.active, CANCELED, -1, "Current goal cancelled due to new incoming "
                        "action.")  # fmt: skip
        last = traj.points[-1]
        order = [list(traj.joint_names).index(j) for j in self.joints]
        target = [float(last.positions[i]) for i in order]
        span = last.time_from_start.sec + last.time_from_start.nanosec * 1e-9
        goal = Goal(gid, list(self.q), target, self.args.duration or span)
        self.goals[gid], self.active = goal, goal

    def finish(self, goal: Goal, state: int, code: int, text: str) -> None:
        """Under the lock: end ``goal`` and answer the get_result calls waiting for it."""
        goal.state, goal.result = state, FjtResult(error_code=code, error_string=text)
        self.log["results"].append({"id": goal.id.hex(), "state": state, "code": code})
        self.dirty = True
        for guid, seq in self.waiting.pop(goal.id, []):
            self.answer_result(guid, seq, goal)

    def answer_result(self, guid: int, seq: int, goal: Goal | None) -> None:
        if goal is None:
            reply = ResultAnswer(client_guid=guid, sequence=seq, status=0)
        else:
            reply = ResultAnswer(client_guid=guid, sequence=seq, status=goal.state,
                                 result=goal.result)  # fmt: skip
        self.result_w.write(reply)

    def on_result(self, reader) -> None:
        for call in reader.take(N=16):
            if not isinstance(call, ResultCall) or self.args.mute:
                continue
            gid = bytes(call.goal_id.uuid)
            with self.lock:
                goal = self.goals.get(gid)
                if goal is None or goal.result is not None:
                    self.answer_result(call.client_guid, call.sequence, goal)
                else:
                    self.waiting.setdefault(gid, []).append((call.client_guid, call.sequence))

    def on_cancel(self, reader) -> None:
        for call in reader.take(N=16):
            if not isinstance(call, CancelCall) or self.args.mute:
                continue
            gid = bytes(call.goal_info.goal_id.uuid)
            every = gid == bytes(16) and not call.goal_info.stamp.sec
            with self.lock:
                self.log["cancels"].append(gid.hex())
                chosen = [g for g in self.goals.values() if every or g.id == gid]
                live = [g for g in chosen if g.result is None]
                for g in live:
                    self.finish(g, CANCELED, 0, "cancelled on request")
            code = 0 if live else (3 if chosen else 2)
            self.cancel_w.write(CancelAnswer(client_guid=call.client_guid, sequence=call.sequence,
                                             return_code=code,
                                             goals_canceling=[g.info for g in live]))  # fmt: skip
            self.publish_status()

    # ---------------------------------------------------------------- the arm
    def tick(self) -> None:
        with self.lock:
            g = self.active
            if g is not None and g.result is None:
                s = min(1.0, (time.monotonic() - g.t0) / g.span)
                desired = [a + s * (b - a) for a, b in zip(g.start, g.target, strict=True)]
                self.q = desired
                fb_msg, fb = self.fb_cls
                point = TrajPoint(positions=desired)
                self.feedback_w.write(fb_msg(goal_id=GoalUuid(uuid=g.id), feedback=fb(
                    header=Hdr(stamp=now_stamp()), joint_names=self.joints, desired=point,
                    actual=point, error=TrajPoint(positions=[0.0] * len(desired)))))  # fmt: skip
                self.log["feedback"] += 1
                over = self.args.limit and max(abs(x) for x in g.target) > self.args.limit
                if over and s >= 0.5:
                    self.finish(g, ABORTED, -4, f"a joint would pass {self.args.limit} rad")
                elif s >= 1.0:
                    self.finish(g, SUCCEEDED, 0, "")
            self.joints_w.write(Joints(header=Hdr(stamp=now_stamp()), name=self.joints,
                                       position=list(self.q)))  # fmt: skip

    def publish_status(self) -> None:
        with self.lock:
            states = [GoalStat(goal_info=g.info, status=g.state) for g in self.goals.values()]
        self.status_w.write(GoalStats(status_list=states[-32:]))

    def write_status(self) -> None:
        with self.lock:
            if not self.dirty or not self.args.status:
                return
            self.dirty = False
            doc = json.dumps({**self.log, "q": self.q})
        tmp = self.args.status + ".tmp"
        Path(tmp).write_text(doc)
        os.replace(tmp, self.args.status)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--domain", type=int, default=0)
    p.add_argument("--action", default="/joint_trajectory_controller/follow_joint_trajectory")
    p.add_argument("--joints", nargs="+", default=PANDA)
    p.add_argument("--duration", type=float, default=0.0)
    p.add_argument("--limit", type=float, default=0.0)
    p.add_argument("--estop-after", type=int, default=0)
    p.add_argument("--mute", action="store_true")
    p.add_argument("--layout", choices=["humble", "rolling"], default="humble")
    p.add_argument("--status", default="")
    args = p.parse_args()
    domain = Domain(args.domain, LOOPBACK)  # kept: the configuration lives as long as it
    node = FjtServer(args)
    node.domain = domain
    node.publish_status()
    node.write_status()
    print("fjt ready", flush=True)
    period, nxt = 0.02, time.monotonic()
    while True:
        node.tick()
        node.write_status()
        nxt += period
        time.sleep(max(0.0, nxt - time.monotonic()))


if __name__ == "__main__":
    main()
