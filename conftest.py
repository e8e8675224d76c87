"""Workspace-wide pytest fixtures: an isolated DDS domain and helpers to run ROS 2 nodes.

Every test session picks its own ROS_DOMAIN_ID and keeps discovery on localhost, so test runs
that overlap on one machine never see each other's topics and no traffic leaves the host.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("PYTHONUNBUFFERED", "1")

WORKSPACE = Path(__file__).resolve().parent


def _executable(name: str) -> str:
    """Path of a console entry point installed beside this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"console entry point {name!r} is not installed; run tools/setup_env.sh"
        )
    return found


@pytest.fixture
def ros_node():
    """An rclpy node in a context of its own, shut down after the test."""
    rclpy = pytest.importorskip("rclpy")
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"pytest_{os.getpid()}_{random.randint(0, 1 << 30)}", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    node.test_executor = executor
    yield node
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)


@pytest.fixture
def spin_until():
    """Spin a node's executor until ``predicate()`` is true or ``timeout_s`` passes; return it."""

    def _spin(node, predicate, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            node.test_executor.spin_once(timeout_sec=0.02)
        return bool(predicate())

    return _spin


class NodeProcess:
    """A node executable started as its own process, with its output kept for failure reports."""

    def __init__(self, name: str, args: list[str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [_executable(name), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 10.0) -> int:
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@pytest.fixture
def start_node(tmp_path):
    """Start node executables (console entry points); all are stopped after the test.

    ``start_node("trial_replay", "--ros-args", "-p", "file:=...")`` returns a NodeProcess.
    """
    started: list[NodeProcess] = []

    def _start(name: str, *args: str) -> NodeProcess:
        proc = NodeProcess(name, list(args), tmp_path)
        started.append(proc)
        return proc

    yield _start
    for proc in reversed(started):
        proc.stop()
