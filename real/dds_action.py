"""``DdsActionClient``: a ROS 2 action client on a ``real.dds.DdsTransport``'s participant.

It exists so an arm behind ``control_msgs/action/FollowJointTrajectory`` (ros2_control's
joint_trajectory_controller, MoveIt setups) can be driven without a ROS install. The action's
hidden services and topics (``real.ros2_actions``) are plain DDS endpoints here: requests on
``rq/<action>/_action/<service>Request`` with rmw_cyclonedds' request header (our random
64-bit id and a sequence number), replies on ``rr/...Reply`` (only those carrying our id are
ours), feedback on ``rt/<action>/_action/feedback``.

- ``send(goal)`` writes a goal under a fresh UUID and returns at once; ``wait_accepted``
  blocks for the server's answer (``ActionRejected``, ``ActionTimeout`` name the action).
  Once accepted, the result is asked for at once (the server answers when the goal ends) and
  the previous goal of ours, if still running, is cancelled: a new goal replaces the old.
- ``halt()`` (the e-stop): cancels every goal of ours not known to have ended, refuses any
  further ``send``, and cancels again any goal whose acceptance arrives after it.
- Counters (``counts()``): goals sent, accepted, rejected, aborted; feedback messages.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cyclonedds.core import Listener
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic

from . import ros2_actions as acts
from . import ros2_msgs as msgs
from .robot import RobotError

log = logging.getLogger("uvdiff.dds")
KEEP_GOALS = 64  # goals remembered (a 20 Hz loop sends one per tick)
TYPE_CONSISTENCY_POLICY_ID = 24


class ActionRejected(RobotError):
    """The action server refused a goal."""


class ActionTimeout(RobotError):
    """The action server did not answer in time."""


class ActionHalted(RobotError):
    """A goal after ``halt()`` (the e-stop): nothing was sent."""


@dataclass
class GoalHandle:
    """One goal of ours: what the server said of it so far."""

    id: bytes
    sent_at: float
    accepted: bool | None = None  # None: no answer yet
    status: int = 0  # action_msgs/GoalStatus, from get_result
    result: dict | None = None
    feedback: int = 0
    last_feedback: dict | None = None
    answered: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def status_name(self) -> str:
        return acts.STATUS.get(self.status, str(self.status))


class DdsActionClient:
    """A client of ``action`` (e.g. ``/arm_controller/follow_joint_trajectory``) of type
    ``ros_type``, in ``distro``'s layout, on a connected ``DdsTransport``."""

    def __init__(
        self,
        transport: Any,
        action: str,
        ros_type: str = acts.FJT,
        *,
        distro: str = "humble",
        on_error: Callable[[str], None] | None = None,
    ):
        if transport.dp is None:
            raise RobotError(f"action {action}: the DDS transport is not connected")
        self.layout = acts.action_layout(ros_type, distro)
        self.action, self.distro = action, distro
        self.guid = int.from_bytes(os.urandom(8), "little") or 1
        self._on_error = on_error or (lambda text: log.warning("%s", text))
        self._dp, self._qos = transport.dp, transport._qos
        self._lock = threading.Lock()
        self._seq = 0
        self._pending: dict[int, tuple[str, GoalHandle | None]] = {}  # sequence -> (kind, goal)
        self._goals: OrderedDict[bytes, GoalHandle] = OrderedDict()
        self._current: GoalHandle | None = None
        self._matched: dict[str, int] = {}
        self.halted = False
        self.sent = self.accepted = self.rejected = self.aborted = self.feedback = 0
        base = f"{action.rstrip('/')}/_action/"
        self._requests: dict[str, DataWriter] = {}
        self._readers: list[DataReader] = []  # kept: a reader nothing refers to is deleted
        for kind, (req, rep) in (("send_goal", self.layout.send_goal),
                                 ("get_result", self.layout.get_result),
                                 ("cancel_goal", self.layout.cancel)):  # fmt: skip
            self._requests[kind] = self._writer(f"rq/{base.lstrip('/')}{kind}Request", req)
            self._reader(f"rr/{base.lstrip('/')}{kind}Reply", rep, self._on_reply)
        self._reader(f"rt/{base.lstrip('/')}feedback", self.layout.feedback, self._on_feedback)

    # ------------------------------------------------------------------ endpoints
    def _writer(self, name: str, cls) -> DataWriter:
        def on_matched(writer, status):
            with self._lock:
                self._matched[name] = status.current_count

        listener = Listener(on_publication_matched=on_matched)
        return DataWriter(self._dp, Topic(self._dp, name, cls), qos=self._qos(self.action),
                          listener=listener)  # fmt: skip

    def _reader(self, name: str, cls, deliver: Callable[[Any], None]) -> DataReader:
        def on_data(reader):
            for _ in range(256):
                try:
                    samples = reader.take(N=1)
                except Exception as e:  # bytes of another layout that do not decode
                    self._on_error(
                        f"{self.action}: unreadable sample on {name}: {e} "
                        f"(distro: {self.distro}; does the server use another?)"
                    )
                    continue
                if not samples:
                    return
                if isinstance(samples[0], cls):
                    deliver(samples[0])

        def on_matched(reader, status):
            with self._lock:
                self._matched[name] = status.current_count

        def on_incompatible(reader, status):
            if status.last_policy_id == TYPE_CONSISTENCY_POLICY_ID:
                self._on_error(
                    f"type mismatch on {name}: the server's {msgs.dds_type_name(cls)} has other "
                    f"fields than the {self.distro} layout (set distro: in the robot config to "
                    f"the server's; one of {list(acts.DISTROS)})"
                )

        listener = Listener(on_data_available=on_data, on_subscription_matched=on_matched,
                            on_requested_incompatible_qos=on_incompatible)  # fmt: skip
        reader = DataReader(self._dp, Topic(self._dp, name, cls), qos=self._qos(self.action),
                            listener=listener)  # fmt: skip
        self._readers.append(reader)
        return reader

    def server_ready(self) -> bool:
        """Every request writer and reply reader of the three services has matched the server."""
        with self._lock:
            ends = [n for n in self._matched if "/_action/" in n and not n.endswith("feedback")]
            return len(ends) == 6 and all(self._matched[n] > 0 for n in ends)

    def wait_for_server(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while not self.server_ready():
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    # ------------------------------------------------------------------ requests
    def _request(self, kind: str, handle: GoalHandle | None, **fields: Any) -> None:
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._pending[seq] = (kind, handle)
        writer = self._requests[kind]
        writer.write(writer.data_type(client_guid=self.guid, sequence=seq, **fields))

    def send(self, goal: Mapping[str, Any] | Any) -> GoalHandle:
        """Write ``goal`` (a dict in the ``.action`` file's field names) under a fresh UUID."""
        if self.halted:
            raise ActionHalted(f"{self.action}: halted (e-stop): goal not sent")
        if not isinstance(goal, self.layout.goal):
            goal = msgs.from_dict(self.layout.goal, goal)
        handle = GoalHandle(os.urandom(16), time.time())
        with self._lock:
            self._goals[handle.id] = handle
            while len(self._goals) > KEEP_GOALS:
                self._goals.popitem(last=False)
            self.sent += 1
        self._request("send_goal", handle, goal_id=acts.UUID(uuid=handle.id), goal=goal)
        return handle

    def wait_accepted(self, handle: GoalHandle, timeout: float) -> GoalHandle:
        if not handle.answered.wait(timeout):
            state = "a server is matched" if self.server_ready() else "no server is matched"
            raise ActionTimeout(
                f"{self.action}: no answer to goal {handle.id.hex()[:8]} in {timeout:g} s ({state})"
            )
        if not handle.accepted:
            raise ActionRejected(f"{self.action}: the action server rejected goal "
                                 f"{handle.id.hex()[:8]}")  # fmt: skip
        return handle

    def send_goal(self, goal: Mapping[str, Any], timeout: float = 5.0) -> GoalHandle:
        """``send`` then ``wait_accepted``."""
        return self.wait_accepted(self.send(goal), timeout)

    def result(self, handle: GoalHandle, timeout: float) -> dict:
        """The goal's result (``error_code``, ``error_string``, ``status``), once it ended."""
        if not handle.done.wait(timeout):
            raise ActionTimeout(f"{self.action}: goal {handle.id.hex()[:8]} has no result after "
                                f"{timeout:g} s (status {handle.status_name})")  # fmt: skip
        return {**(handle.result or {}), "status": handle.status_name}

    def cancel(self, handle: GoalHandle | None = None) -> None:
        """Ask the server to cancel ``handle`` (None: every goal of ours not known to have
        ended); the answer arrives later and is only logged."""
        with self._lock:
            goals = [handle] if handle is not None else [
                g for g in self._goals.values() if g.accepted is not False and not g.done.is_set()
            ]  # fmt: skip
        for g in goals:
            self._request("cancel_goal", g, goal_info=acts.GoalInfo(goal_id=acts.UUID(uuid=g.id)))

    def halt(self) -> None:
        """The e-stop: cancel our goals and send no other."""
        self.halted = True
        self.cancel()

    # ------------------------------------------------------------------ answers
    def _on_reply(self, reply) -> None:
        if reply.client_guid != self.guid:
            return  # another client's
        with self._lock:
            kind, handle = self._pending.pop(reply.sequence, (None, None))
        if kind == "send_goal":
            self._on_goal_answer(handle, bool(reply.accepted))
        elif kind == "get_result":
            handle.status = int(reply.status)
            handle.result = msgs.to_dict(reply.result)
            handle.done.set()
            if handle.status == 6:  # ABORTED
                self.aborted += 1
                code = handle.result["error_code"]
                self._on_error(f"{self.action}: goal {handle.id.hex()[:8]} aborted: error_code "
                               f"{code} ({acts.ERROR_CODES.get(code, '?')}) "
                               f"{handle.result['error_string']}")  # fmt: skip
        elif kind == "cancel_goal" and reply.return_code not in (0, 3):  # 3: it had ended
            name = acts.CANCEL_CODES.get(reply.return_code, str(reply.return_code))
            self._on_error(f"{self.action}: cancelling goal {handle.id.hex()[:8]}: {name}")

    def _on_goal_answer(self, handle: GoalHandle, accepted: bool) -> None:
        handle.accepted = accepted
        previous = None
        with self._lock:
            if accepted:
                self.accepted += 1
                previous, self._current = self._current, handle
            else:
                self.rejected += 1
        handle.answered.set()
        if not accepted:
            self._on_error(f"{self.action}: the action server rejected goal {handle.id.hex()[:8]}")
            return
        self._request("get_result", handle, goal_id=acts.UUID(uuid=handle.id))
        if self.halted:  # accepted after the e-stop: stop it at once
            self.cancel(handle)
        if previous is not None and not previous.done.is_set():
            self.cancel(previous)  # a new goal replaces the old

    def _on_feedback(self, msg) -> None:
        with self._lock:
            handle = self._goals.get(bytes(msg.goal_id.uuid))
            if handle is None:
                return  # another client's goal
            self.feedback += 1
        handle.feedback += 1
        handle.last_feedback = msgs.to_dict(msg.feedback)

    def counts(self) -> dict[str, int]:
        return {"goals_sent": self.sent, "goals_accepted": self.accepted,
                "goals_rejected": self.rejected, "goals_aborted": self.aborted,
                "feedback": self.feedback}  # fmt: skip
