"""ROS 2 over Zenoh as rmw_zenoh speaks it: type hashes against published values, and a robot
driven by a Zenoh peer (its own session over TCP loopback) that checks our key expressions,
liveliness tokens and attachments by rmw_zenoh's rules and writes its payloads with rosbags'
ROS 2 serialiser, not ours."""

import contextlib
import re
import socket
import struct
import threading
import time

import numpy as np
import pytest
import zenoh
from rosbags.typesys import Stores, get_typestore
from rosrig import wait_until

from real import rmw_zenoh as rz
from real import ros2_msgs as msgs
from real.robot import EStopped, RobotError

STORE = get_typestore(Stores.ROS2_HUMBLE)  # message layouts are the same in Jazzy

# published: rmw_zenoh's design.md (Jazzy) for String and AddTwoInts; ros2 topic info for JointState
STRING_HASH = "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"
JOINT_STATE_HASH = "RIHS01_a13ee3a330e346c9d87b5aa18d24e11690752bd33a0350f11c5882bc9179260e"
ADD_TWO_INTS_HASH = "RIHS01_e118de6bf5eeb66a2491b5bda11202e7b68f198d6f67922cf30364858239c81a"


def test_type_hashes_match_the_published_ones():
    from dataclasses import dataclass

    import cyclonedds.idl.types as t
    from cyclonedds.idl import IdlStruct

    assert rz.type_hash(msgs.String) == STRING_HASH
    assert rz.type_hash(msgs.JointState) == JOINT_STATE_HASH
    assert rz.type_hash(msgs.JointState, "humble") == "TypeHashNotSupported"

    @dataclass
    class Req(IdlStruct, typename="example_interfaces::srv::dds_::AddTwoInts_Request_"):
        a: t.int64 = 0
        b: t.int64 = 0

    @dataclass
    class Res(IdlStruct, typename="example_interfaces::srv::dds_::AddTwoInts_Response_"):
        sum: t.int64 = 0

    assert rz.service_hash(Req, Res) == ADD_TWO_INTS_HASH


def test_keys_tokens_and_attachment_by_rmw_zenohs_examples():
    key = rz.data_key(0, "/robot1/chatter", "std_msgs::msg::dds_::String_", STRING_HASH)
    assert key == f"0/robot1/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}"
    token = rz.liveliness_token(
        0,
        "aac3",
        0,
        10,
        "subscription",
        "listener",
        topic="/chatter",
        dds_type="std_msgs::msg::dds_::String_",
        hash_=STRING_HASH,
    )
    assert token == (
        f"@ros2_lv/0/aac3/0/10/MS/%/%/listener/%chatter/std_msgs::msg::dds_::String_/"
        f"{STRING_HASH}/::,10:,:,:,,"
    )
    assert rz.Qos(depth=7).token() == "::,7:,:,:,,"
    assert rz.QOS["sensor_data"].token() == "2::,5:,:,:,,"
    raw = rz.attachment(3, 1_700_000_000_000_000_000, bytes(range(16)))
    assert len(raw) == 33 and raw[16] == 16 and rz.read_attachment(raw)[0] == 3
    with pytest.raises(ValueError, match="33"):
        rz.read_attachment(raw[:20])


# ------------------------------------------------------------------- the peer
TOKEN = re.compile(  # rmw_zenoh's endpoint token: 13 non-empty chunks, a known kind, its QoS
    r"^@ros2_lv/(?P<domain>\d+)/(?P<zid>[0-9a-f]+)/(?P<node>\d+)/(?P<id>\d+)/(?P<kind>MP|MS|SS|SC)"
    r"/(?P<enclave>[^/]+)/(?P<ns>[^/]+)/(?P<name>[^/]+)/(?P<topic>%[^/]+)/(?P<type>[^/]+::dds_::"
    r"[^/]+_)/(?P<hash>RIHS01_[0-9a-f]{64}|TypeHashNotSupported)"
    r"/(?P<qos>[0-9]*:[0-9]*:[0-9]*,[0-9]*:[0-9]*,[0-9]*:[0-9]*,[0-9]*:[0-9]*,[0-9]*,[0-9]*)$"
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Peer:
    """A Zenoh peer that listens on loopback, like a robot's rmw_zenoh graph."""

    def __init__(self, domain: int = 0):
        self.port, self.domain = _port(), domain
        cfg = zenoh.Config()
        cfg.insert_json5("mode", '"peer"')
        cfg.insert_json5("listen/endpoints", f'["tcp/127.0.0.1:{self.port}"]')
        cfg.insert_json5("scouting/multicast/enabled", "false")
        self.session = zenoh.open(cfg)
        self.tokens: set[str] = set()
        self.received: list[tuple[bytes, bytes]] = []
        self.decl = [
            self.session.liveliness().declare_subscriber(
                f"@ros2_lv/{domain}/**", self._token, history=True
            )
        ]
        self.seq = 0
        self.token_of: dict = {}

    def _token(self, sample):
        if sample.kind == zenoh.SampleKind.PUT:
            self.tokens.add(str(sample.key_expr))
        else:
            self.tokens.discard(str(sample.key_expr))

    def endpoint(self, kind, topic, ros_type, hash_):
        dds = "{}::msg::dds_::{}_".format(*ros_type.split("/msg/"))
        token = rz.liveliness_token(
            self.domain,
            str(self.session.zid()),
            0,
            len(self.decl),
            kind,
            "arm",
            topic=topic,
            dds_type=dds,
            hash_=hash_,
        )
        self.decl.append(self.session.liveliness().declare_token(token))
        self.token_of[(kind, topic)] = self.decl[-1]
        return f"{self.domain}/{topic.strip('/')}/{dds}/{hash_}"

    def publisher(self, topic, ros_type, hash_):
        key = self.endpoint("publisher", topic, ros_type, hash_)
        pub = self.session.declare_publisher(key)
        self.decl.append(pub)
        return pub

    def put(self, pub, ros_type, msg):
        self.seq += 1
        att = struct.pack("<qqB16s", self.seq, time.time_ns(), 16, b"\x07" * 16)
        pub.put(bytes(STORE.serialize_cdr(msg, ros_type)), attachment=att)

    def listen(self, topic, ros_type, hash_):
        key = self.endpoint("subscription", topic, ros_type, hash_)
        self.decl.append(
            self.session.declare_subscriber(
                key, lambda s: self.received.append((s.payload.to_bytes(), s.attachment.to_bytes()))
            )
        )

    def close(self):
        for d in reversed(self.decl):
            with contextlib.suppress(zenoh.ZError):  # undeclared by the test already
                d.undeclare()
        self.session.close()


def _wait(pred, timeout=10.0):
    return wait_until(pred, timeout, step=0.02)


def _joint_state(k: int):
    js, hdr, t = (
        STORE.types[n]
        for n in (
            "sensor_msgs/msg/JointState",
            "std_msgs/msg/Header",
            "builtin_interfaces/msg/Time",
        )
    )
    now = time.time()
    return js(
        header=hdr(stamp=t(sec=int(now), nanosec=int(now % 1 * 1e9)), frame_id="w"),
        name=["f1", "f2"],
        position=np.array([0.01 * k, 0.02]),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )


def _robot(peer, distro="jazzy", **changes):
    from real.zenoh_link import ZenohRobot

    state = [
        {
            "key": "gripper_qpos",
            "topic": "/joint_states",
            "type": "sensor_msgs/msg/JointState",
            "field": "position",
            "joints": ["f1", "f2"],
        }
    ]
    kw = dict(
        state=state,
        command={"topic": "/uvdiff/command", "type": "std_msgs/msg/Float64MultiArray"},
        estop={
            "topic": "/uvdiff/estop",
            "type": "std_msgs/msg/Bool",
            "service": "/uvdiff/estop_trigger",
        },
        connect=[f"tcp/127.0.0.1:{peer.port}"],
        distro=distro,
        domain_id=peer.domain,
        stamp="receipt",
        connect_timeout=5,
    )
    kw.update(changes)
    return ZenohRobot(**kw)


@pytest.fixture
def peer():
    p = Peer()
    stop = threading.Event()
    pub = p.publisher("/joint_states", "sensor_msgs/msg/JointState", JOINT_STATE_HASH)

    def run():
        k = 0
        while not stop.is_set():
            p.put(pub, "sensor_msgs/msg/JointState", _joint_state(k))
            k += 1
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    p.listen(
        "/uvdiff/command", "std_msgs/msg/Float64MultiArray", rz.type_hash(msgs.Float64MultiArray)
    )
    yield p
    stop.set()
    thread.join()
    p.close()


def test_a_robot_over_zenoh_as_rmw_zenoh_sees_it(peer):
    robot = _robot(peer)
    robot.connect()
    try:
        assert robot.observe().state["gripper_qpos"][1] == pytest.approx(0.02)
        # our tokens parse by rmw_zenoh's rules, in the peer's view of the graph
        assert _wait(lambda: sum("/uvdiff/" in t for t in list(peer.tokens)) >= 4)  # 4 endpoints
        ours = [m for t in list(peer.tokens) if (m := TOKEN.match(t)) and m["name"] == "uvdiff"]
        got = {(m["kind"], m["topic"], m["type"], m["hash"]) for m in ours}
        assert (
            "MS",
            "%joint_states",
            "sensor_msgs::msg::dds_::JointState_",
            JOINT_STATE_HASH,
        ) in got
        assert (
            "MP",
            "%uvdiff%command",
            "std_msgs::msg::dds_::Float64MultiArray_",
            rz.type_hash(msgs.Float64MultiArray),
        ) in got
        assert any(k == "SS" and t == "%uvdiff%estop_trigger" for k, t, _, _ in got)
        assert all(m["ns"] == "%" and m["enclave"] == "%" for m in ours)
        assert any(re.fullmatch(r"@ros2_lv/0/[0-9a-f]+/0/0/NN/%/%/uvdiff", t) for t in peer.tokens)
        for a in ([0.1] * 7, [0.2] * 7):
            robot.command(np.array(a))
        assert _wait(lambda: len(peer.received) >= 2)
        (p1, a1), (p2, a2) = peer.received[:2]
        msg = STORE.deserialize_cdr(p1, "std_msgs/msg/Float64MultiArray")  # rosbags reads ours
        assert np.allclose(msg.data, 0.1)
        (s1, t1, n1, g1), (s2, _, _, g2) = (struct.unpack("<qqB16s", x) for x in (a1, a2))
        assert (s1, s2, n1) == (1, 2, 16) and g1 == g2 and abs(t1 / 1e9 - time.time()) < 5
    finally:
        robot.close()


def test_the_estop_service_answers_a_zenoh_query_and_latches(peer):
    robot = _robot(peer)
    robot.connect()
    try:
        srv = "std_srvs::srv::dds_::Trigger_"
        key = rz.data_key(
            0,
            "/uvdiff/estop_trigger",
            srv,
            rz.service_hash(msgs.TriggerRequest, msgs.TriggerResponse),
        )
        request = b"\x00\x01\x00\x00\x00"  # CDR header + the one uint8 of an empty struct
        att = struct.pack("<qqB16s", 5, time.time_ns(), 16, b"\x09" * 16)
        replies = list(peer.session.get(key, payload=request, attachment=att, timeout=5.0))
        assert len(replies) == 1 and replies[0].ok is not None
        raw = replies[0].ok.payload.to_bytes()  # bool success, then string message at offset 4
        (n,) = struct.unpack_from("<I", raw, 8)
        assert raw[:4] == b"\x00\x01\x00\x00" and raw[4] == 1
        assert b"e-stop" in raw[12 : 12 + n - 1]
        seq, _, _, gid = struct.unpack("<qqB16s", replies[0].ok.attachment.to_bytes())
        assert (seq, gid) == (5, b"\x09" * 16)  # echoed, as rmw_zenoh's servers do
        assert robot.estopped
        with pytest.raises(EStopped):
            robot.command(np.zeros(7))
    finally:
        robot.close()


def test_a_humble_robot_on_a_jazzy_graph_is_told_why_nothing_arrives(peer):
    robot = _robot(peer, distro="humble")
    with pytest.raises(
        RobotError, match="announces sensor_msgs::msg::dds_::JointState_ with hash RIHS01_a13ee3"
    ):
        robot.connect()  # its keys end in TypeHashNotSupported: the Jazzy samples never match


def test_samples_without_rmw_zenohs_attachment_or_with_bad_cdr_are_dropped_and_counted(peer):
    robot = _robot(peer)
    robot.connect()
    try:
        key = rz.data_key(
            0, "/joint_states", "sensor_msgs::msg::dds_::JointState_", JOINT_STATE_HASH
        )
        peer.session.put(
            key, bytes(STORE.serialize_cdr(_joint_state(0), "sensor_msgs/msg/JointState"))
        )
        assert _wait(lambda: robot.link.malformed >= 1)
        assert any("no attachment" in e for e in robot.errors)
        att = struct.pack("<qqB16s", 1, time.time_ns(), 16, b"\x01" * 16)
        peer.session.put(key, b"\x00\x01\x00\x00\xff", attachment=att)  # truncated CDR
        assert _wait(lambda: robot.link.malformed >= 2)
        assert robot.observe().state["gripper_qpos"].shape == (2,)  # the good ones still count
    finally:
        robot.close()


def test_a_publisher_whose_token_goes_is_counted_as_lost(peer):
    robot = _robot(peer)
    robot.connect()
    try:
        peer.token_of[("publisher", "/joint_states")].undeclare()  # the node left the graph
        assert _wait(lambda: robot.disconnects >= 1)
        assert any("every publisher of /joint_states left" in e for e in robot.errors)
    finally:
        robot.close()
