"""A small rosbridge v2 server for the tests: WebSocket (JSON) on one side, ROS 1 on the other.

Written for this project from the protocol description (ROSBRIDGE_PROTOCOL.md). Ops:
advertise, unadvertise, publish, subscribe (throttle_rate), unsubscribe; advertise_service,
unadvertise_service, service_response (a client serving a ROS service); auth (rosauth MAC:
SHA-512 of secret, client, dest, rand, t, level, end). Malformed or unknown requests get a
``status`` reply and the connection stays up. Messages convert with ``rospy_message_converter``
(uint8[] as base64). ROS 2 spellings are accepted on the way in (``pkg/msg/Type``, ``sec`` /
``nanosec``); ``--ros2`` also writes them on the way out, standing in for a ROS 2 rosbridge.

Faults for the tests: ``--delay-ms`` makes every outgoing message that late (a latency; the
queue drains at full speed), ``--reorder`` swaps each pair of outgoing messages on a topic,
``--garbage-every N`` sends a malformed frame after every N-th message.

    python bridge.py --port 9090 [--secret S] [--ros2] [--delay-ms 30] [--reorder]

Needs ROS_MASTER_URI; prints "bridge ready" when listening.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from real.rospath import use_ros_python  # noqa: E402

use_ros_python()
import roslib.message  # noqa: E402
import rospy  # noqa: E402
import websockets  # noqa: E402
from rospy_message_converter import message_converter  # noqa: E402


def ros1_type(name: str) -> str:
    parts = name.split("/")
    return f"{parts[0]}/{parts[-1]}" if len(parts) == 3 and parts[1] == "msg" else name


def to_ros1(x):
    """ROS 2 time fields (sec, nanosec) -> ROS 1 (secs, nsecs), recursively."""
    if isinstance(x, dict):
        if set(x) == {"sec", "nanosec"}:
            return {"secs": x["sec"], "nsecs": x["nanosec"]}
        return {k: to_ros1(v) for k, v in x.items()}
    if isinstance(x, list):
        return [to_ros1(v) for v in x]
    return x


def to_ros2(x):
    if isinstance(x, dict):
        if set(x) == {"secs", "nsecs"}:
            return {"sec": x["secs"], "nanosec": x["nsecs"]}
        return {k: to_ros2(v) for k, v in x.items() if k != "seq"}
    if isinstance(x, list):
        return [to_ros2(v) for v in x]
    return x


class BridgeError(Exception):
    pass


class Client:
    """One WebSocket connection: its publishers, subscriptions and outgoing queue."""

    def __init__(self, ws, server: Server):
        self.ws, self.server = ws, server
        self.loop = asyncio.get_running_loop()
        self.out: asyncio.Queue = asyncio.Queue()
        self.publishers: dict[str, rospy.Publisher] = {}
        self.subs: dict[str, rospy.Subscriber] = {}
        self.authed = server.secret is None
        self.services: dict[str, rospy.Service] = {}
        self.calls: dict[str, list] = {}  # call id -> [event, response values, result]
        self.n_calls = 0
        self.held: dict[str, str] = {}  # --reorder: the message waiting for its successor
        self.last_sent: dict[str, float] = {}

    # ---------------------------------------------------------------- outgoing
    def send(self, obj) -> None:
        self._put(json.dumps(obj))

    def _put(self, text: str) -> None:
        """Queue ``text`` to leave ``delay`` after now: a latency, not a cap on throughput."""
        self.out.put_nowait((time.monotonic() + self.server.delay, text))

    def status(self, level: str, msg: str, id_=None) -> None:
        obj = {"op": "status", "level": level, "msg": msg}
        if id_ is not None:
            obj["id"] = id_
        self.send(obj)

    async def sender(self) -> None:
        garbage, n = self.server.garbage_every, 0
        while True:
            due, text = await self.out.get()
            if (wait := due - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            await self.ws.send(text)
            n += 1
            if garbage and n % garbage == 0:
                await self.ws.send('{"op": "publish", "topic": ')  # cut short: not JSON

    def from_ros(self, topic: str, throttle: float, msg) -> None:
        """A rospy thread got ``msg``: hand it to the event loop."""
        now = time.monotonic()
        if throttle and now - self.last_sent.get(topic, -1e9) < throttle:
            return
        self.last_sent[topic] = now
        d = message_converter.convert_ros_message_to_dictionary(msg)
        if self.server.ros2:
            d = to_ros2(d)
        text = json.dumps({"op": "publish", "topic": topic, "msg": d})
        self.loop.call_soon_threadsafe(self._queue_publish, topic, text)

    def _queue_publish(self, topic: str, text: str) -> None:
        if not self.server.reorder:
            self._put(text)
        elif topic in self.held:
            self._put(text)
            self._put(self.held.pop(topic))
        else:
            self.held[topic] = text

    # ---------------------------------------------------------------- incoming
    def handle(self, raw) -> None:
        try:
            msg = json.loads(raw)
        except (ValueError, TypeError) as e:
            self.status("error", f"malformed JSON: {e}")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("op"), str):
            self.status("error", "a request must be a JSON object with an 'op'")
            return
        op, id_ = msg["op"], msg.get("id")
        if op != "auth" and not self.authed:
            self.status("error", f"{op}: not authenticated", id_)
            return
        try:
            getattr(self, "op_" + op, self.op_unknown)(msg)
        except BridgeError as e:
            self.status("error", f"{op}: {e}", id_)
        except Exception as e:  # a request that does not fit the message type
            self.status("error", f"{op}: {type(e).__name__}: {e}", id_)

    def op_unknown(self, msg) -> None:
        raise BridgeError("unknown op")

    def _field(self, msg, key):
        if key not in msg:
            raise BridgeError(f"missing {key!r}")
        return msg[key]

    def _class(self, type_name: str):
        cls = roslib.message.get_message_class(ros1_type(type_name))
        if cls is None:
            raise BridgeError(f"unknown message type {type_name!r}")
        return cls

    def op_auth(self, msg) -> None:
        s = self.server.secret
        now = time.time()
        fields = [str(msg.get(k, "")) for k in ("client", "dest", "rand")]
        t, level, end = msg.get("t", 0), str(msg.get("level", "")), msg.get("end", 0)
        text = s + "".join(fields) + str(int(t)) + level + str(int(end))
        ok = (
            s is not None
            and abs(now - float(t)) < 5
            and float(end) > now
            and hashlib.sha512(text.encode()).hexdigest() == msg.get("mac")
        )
        if not ok:
            self.status("error", "authentication failed")
            self.loop.create_task(self.ws.close(code=4001, reason="authentication failed"))
            return
        self.authed = True

    def op_advertise(self, msg) -> None:
        topic = self._field(msg, "topic")
        cls = self._class(self._field(msg, "type"))
        pub = self.publishers.get(topic)
        if pub is not None and pub.data_class is not cls:
            raise BridgeError(f"{topic} is advertised with type {pub.type}")
        if pub is None:
            latch = bool(msg.get("latch", False))
            self.publishers[topic] = rospy.Publisher(topic, cls, queue_size=10, latch=latch)

    def op_unadvertise(self, msg) -> None:
        pub = self.publishers.pop(self._field(msg, "topic"), None)
        if pub is not None:
            pub.unregister()

    def op_publish(self, msg) -> None:
        topic = self._field(msg, "topic")
        pub = self.publishers.get(topic)
        if pub is None:
            raise BridgeError(f"{topic} is not advertised")
        body = to_ros1(self._field(msg, "msg"))
        if not isinstance(body, dict):
            raise BridgeError("'msg' must be an object")
        ros_msg = message_converter.convert_dictionary_to_ros_message(pub.type, body)
        if hasattr(ros_msg, "header") and "header" not in body:
            ros_msg.header.stamp = rospy.Time.now()
        # serialise once on the side: a message rospy cannot serialise would otherwise fail
        # inside Publisher.publish and leave its shared buffer unusable for later messages
        ros_msg.serialize(io.BytesIO())
        pub.publish(ros_msg)

    def op_subscribe(self, msg) -> None:
        topic = self._field(msg, "topic")
        cls = self._class(self._field(msg, "type"))
        if topic in self.subs:
            return
        throttle = float(msg.get("throttle_rate", 0) or 0) / 1000.0
        self.subs[topic] = rospy.Subscriber(
            topic,
            cls,
            lambda m, t=topic: self.from_ros(t, throttle, m),
            queue_size=int(msg.get("queue_length", 0) or 0) or None,
            buff_size=2**24,
        )

    def op_unsubscribe(self, msg) -> None:
        sub = self.subs.pop(self._field(msg, "topic"), None)
        if sub is not None:
            sub.unregister()

    def op_advertise_service(self, msg) -> None:
        name, type_ = self._field(msg, "service"), ros1_type(self._field(msg, "type"))
        cls = roslib.message.get_service_class(type_)
        if cls is None:
            raise BridgeError(f"unknown service type {type_!r}")
        if name in self.services:
            return
        self.services[name] = rospy.Service(
            name, cls, lambda req, n=name, t=type_: self.serve(n, t, req)
        )

    def op_unadvertise_service(self, msg) -> None:
        srv = self.services.pop(self._field(msg, "service"), None)
        if srv is not None:
            srv.shutdown()

    def serve(self, name: str, type_: str, req):
        """A ROS client called a service this WebSocket client serves (rospy thread)."""
        import threading

        self.n_calls += 1
        call_id = f"service_request:{name}:{self.n_calls}"
        slot = [threading.Event(), None, False]
        self.calls[call_id] = slot
        args = message_converter.convert_ros_message_to_dictionary(req)
        obj = {"op": "call_service", "id": call_id, "service": name, "args": args}
        self.loop.call_soon_threadsafe(self.send, obj)
        try:
            if not slot[0].wait(5.0):
                raise rospy.ServiceException(f"{name}: no response from the WebSocket client")
        finally:
            self.calls.pop(call_id, None)
        if not slot[2]:
            raise rospy.ServiceException(f"{name}: the WebSocket client reported failure")
        return message_converter.convert_dictionary_to_ros_message(
            type_, to_ros1(slot[1] or {}), kind="response"
        )

    def op_service_response(self, msg) -> None:
        slot = self.calls.get(self._field(msg, "id"))
        if slot is None:
            raise BridgeError(f"no pending call {msg['id']!r}")
        slot[1], slot[2] = msg.get("values"), bool(msg.get("result", True))
        slot[0].set()

    def close(self) -> None:
        for srv in self.services.values():
            srv.shutdown()
        for s in self.subs.values():
            s.unregister()
        for p in self.publishers.values():
            p.unregister()


class Server:
    def __init__(self, secret=None, ros2=False, delay_ms=0.0, reorder=False, garbage_every=0):
        self.secret, self.ros2, self.reorder = secret, ros2, reorder
        self.garbage_every = garbage_every
        self.delay = delay_ms / 1000.0

    async def connection(self, ws, path=None) -> None:
        client = Client(ws, self)
        sender = asyncio.create_task(client.sender())
        try:
            async for raw in ws:
                client.handle(raw)
        except websockets.ConnectionClosed:
            pass
        finally:
            sender.cancel()
            client.close()


async def main(args) -> None:
    server = Server(args.secret, args.ros2, args.delay_ms, args.reorder, args.garbage_every)
    async with websockets.serve(server.connection, args.host, args.port, max_size=2**26):
        print("bridge ready", flush=True)
        while not rospy.is_shutdown():
            await asyncio.sleep(0.2)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", default=None)
    p.add_argument("--ros2", action="store_true")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--reorder", action="store_true")
    p.add_argument("--garbage-every", type=int, default=0)
    args = p.parse_args()
    rospy.init_node("uvdiff_test_bridge", anonymous=True, disable_signals=False)
    asyncio.run(main(args))
