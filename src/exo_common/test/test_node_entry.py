"""Ctrl-C during a node's imports: a clean stop (exit 0, no traceback), the node never started.

A stand-in node module interrupts its own import, so the signal lands there every time; the
real executables are interrupted as soon as their entry point handles the stop signals.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

STOP_BOUND_S = 60.0  # rclpy, numpy and the backends importing on a busy 2-core machine

SLOW_NODE = """
import os
import signal
import time

if {signal}:
    os.kill(os.getpid(), {signal})
time.sleep(0.3)  # the rest of a long import


def main(args=None):
    print("node started with", args)
    return 3
"""
RUN_ENTRY = ("import sys\nfrom exo_common.node_entry import node_entry\n"
             "sys.exit(node_entry('slow_node')(['--ros-args']))")


def run_slow_node(tmp_path: Path, sig: int) -> subprocess.CompletedProcess:
    (tmp_path / "slow_node.py").write_text(SLOW_NODE.format(signal=int(sig)))
    return subprocess.run([sys.executable, "-c", RUN_ENTRY], cwd=tmp_path, capture_output=True,
                          text=True, timeout=STOP_BOUND_S,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_during_the_imports_exits_0_without_starting_the_node(tmp_path, sig):
    result = run_slow_node(tmp_path, sig)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "node started" not in result.stdout, result


def test_without_a_signal_the_node_main_runs_with_the_arguments(tmp_path):
    result = run_slow_node(tmp_path, 0)
    assert result.returncode == 3, result.stderr
    assert "node started with ['--ros-args']" in result.stdout


def handles_sigterm(pid: int) -> bool:
    """Whether the process catches SIGTERM (Python does not by default; node_entry does)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    return bool(caught >> (signal.SIGTERM - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs procfs")
@pytest.mark.parametrize("name", ["hip_moment_estimator", "simulated_actuator"])
def test_a_real_node_interrupted_while_it_starts_exits_0_without_a_traceback(start_node, name):
    node = start_node(name)
    deadline = time.monotonic() + STOP_BOUND_S
    while node.alive() and not handles_sigterm(node.process.pid):
        assert time.monotonic() < deadline, node.output()
        time.sleep(0.001)
    node.process.send_signal(signal.SIGINT)
    assert node.process.wait(timeout=STOP_BOUND_S) == 0, node.output()
    assert "Traceback" not in node.output(), node.output()
