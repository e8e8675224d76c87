"""A test process that is killed (no fixture teardown runs) leaves no child of its own running.

The workspace conftest starts node processes and ``ros2 launch`` behind ``stop_with_parent``:
the kernel sends them SIGINT when the test process dies. Here a stand-in test process starts a
child that way and is SIGKILLed; the child must end on its own.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

END_BOUND_S = 30.0
PARENT = """
import subprocess, sys, time
CHILD = "import time; print('child sleeping', flush=True); time.sleep(300)"
child = subprocess.Popen({prefix!r} + [sys.executable, "-c", CHILD])
print(child.pid, flush=True)
time.sleep(300)
"""


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's reaper may be slow to collect it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs procfs")
def test_a_child_of_a_killed_test_process_ends(stop_with_parent):
    if not stop_with_parent:
        pytest.skip("no setpriv --pdeathsig here: a killed test run may leave nodes running")
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(prefix=stop_with_parent)],
                              stdout=subprocess.PIPE, text=True)
    # The parent's line (the child's pid) and the child's, once it sleeps (setpriv has armed
    # the signal and Python handles SIGINT by then), in either order.
    lines = {parent.stdout.readline().strip() for _ in range(2)}
    assert "child sleeping" in lines, lines
    child = int((lines - {"child sleeping"}).pop())
    try:
        assert running(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + END_BOUND_S
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(child), "the child outlived its killed parent"
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)
