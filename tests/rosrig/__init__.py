"""Real ROS peers for the real/ tests: a rosmaster on a free loopback port, the project's test
rosbridge server (``bridge.py``) and a simulated arm node (``arm_node.py``), each a subprocess
of this venv's Python with Debian's ROS packages appended (``real.rospath``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from real.rospath import ros_python_path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def have_ros() -> bool:
    return ros_python_path() is not None and Path("/usr/bin/rosmaster").is_file()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds pass (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False


def wait_port(port: int, timeout: float = 20.0, proc=None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


class Rig:
    """Starts and stops the peers of one test; ``stop()`` kills only what it started."""

    def __init__(self, tmp: Path):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.master_port = free_port()
        self.env = {
            **os.environ,
            "ROS_MASTER_URI": f"http://127.0.0.1:{self.master_port}",
            "ROS_HOSTNAME": "127.0.0.1",
            "ROS_HOME": str(self.tmp / "ros_home"),
            "ROS_LOG_DIR": str(self.tmp / "ros_log"),
            "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
            "PYTHONUNBUFFERED": "1",
        }

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 (lives with the process)
        p = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        p.name = name
        self.procs.append(p)
        return p

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def master(self) -> subprocess.Popen:
        p = self._spawn("master", ["/usr/bin/rosmaster", "--core", "-p", str(self.master_port)])
        wait_port(self.master_port, proc=p)
        return p

    def bridge(self, *opts: str) -> int:
        port = free_port()
        argv = [sys.executable, str(HERE / "bridge.py"), "--port", str(port), *opts]
        p = self._spawn("bridge", argv)
        wait_port(port, proc=p)
        return port

    def arm(self, *opts: str, name: str = "arm", timeout: float = 60.0) -> subprocess.Popen:
        status = self.tmp / f"{name}.json"
        argv = [sys.executable, str(HERE / "arm_node.py"), "--status", str(status), *opts]
        p = self._spawn(name, argv)
        end = time.monotonic() + timeout
        while "arm ready" not in self.log(name):
            if p.poll() is not None:
                raise RuntimeError(f"arm node exited: {self.log(name)[-2000:]}")
            if time.monotonic() > end:
                raise TimeoutError(f"arm node not ready: {self.log(name)[-2000:]}")
            time.sleep(0.05)
        p.status = status
        return p

    def listen(self, topic: str, type_: str, name: str = "listen") -> Path:
        """A rospy subscriber on ``topic`` writing each message to the returned JSONL file."""
        out = self.tmp / f"{name}.jsonl"
        argv = [sys.executable, str(HERE / "listen.py"), topic, type_, str(out)]
        p = self._spawn(name, argv)
        end = time.monotonic() + 20
        while "listening" not in self.log(name):
            if p.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"listener did not start: {self.log(name)[-2000:]}")
            time.sleep(0.05)
        return out

    def kill(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)

    def stop(self) -> None:
        """Kill every peer (SIGKILL: they hold nothing worth a clean shutdown, and rospy
        nodes can take seconds to honour SIGTERM)."""
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        for p in reversed(self.procs):
            p.wait(5)
