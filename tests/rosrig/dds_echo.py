"""A DDS echo node (its own type declarations, ``dds_types``): every sample on
``rt/bench/ping_<kind>`` goes straight back on ``rt/bench/pong_<kind>``, for round-trip timing.
Prints "echo ready"."""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cyclonedds.core import Listener, Policy, Qos  # noqa: E402
from cyclonedds.domain import Domain, DomainParticipant  # noqa: E402
from cyclonedds.pub import DataWriter  # noqa: E402
from cyclonedds.sub import DataReader  # noqa: E402
from cyclonedds.topic import Topic  # noqa: E402
from cyclonedds.util import duration  # noqa: E402
from dds_types import LOOPBACK, Doubles, Joints, RawImage  # noqa: E402

KINDS = {"float64x7": Doubles, "jointstate9": Joints, "image96_rgb8": RawImage}
QOS = Qos(Policy.Reliability.Reliable(duration(milliseconds=100)), Policy.History.KeepLast(10))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--domain", type=int, required=True)
    a = p.parse_args()
    domain = Domain(a.domain, LOOPBACK)
    dp = DomainParticipant(a.domain)
    keep = [domain]
    for kind, cls in KINDS.items():
        out = DataWriter(dp, Topic(dp, f"rt/bench/pong_{kind}", cls), qos=QOS)

        def back(reader, out=out, cls=cls):
            for s in reader.take(N=16):
                if isinstance(s, cls):  # not an invalid-sample marker
                    out.write(s)

        keep.append(DataReader(dp, Topic(dp, f"rt/bench/ping_{kind}", cls), qos=QOS,
                               listener=Listener(on_data_available=back)))  # fmt: skip
    print("echo ready", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
