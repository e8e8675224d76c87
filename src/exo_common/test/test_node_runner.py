"""run_node's stop: a slow one (close() hanging, say) prints every thread's stack.

ros2 launch escalates to SIGTERM 5 s after SIGINT; a node still stopping after SLOW_STOP_S
says where it is, so a rare hang on a loaded CI machine can be diagnosed from its log. A
teardown that hangs after close() (inside DDS, as seen once in CI) ends the process with
status 1 after TEARDOWN_LIMIT_S instead of waiting for launch's SIGKILL.
"""

import signal
import subprocess
import sys
import time

from exo_common.node_runner import SLOW_STOP_S, TEARDOWN_LIMIT_S

NODE = """
import sys
import time

from exo_common.node_runner import run_node
from rclpy.node import Node


class Stopping(Node):
    def __init__(self):
        super().__init__("stopping_{pid}")
        print("ready", flush=True)

    def close(self):
        time.sleep({close_s})

    def destroy_node(self):
        time.sleep({destroy_s})
        super().destroy_node()


sys.exit(run_node(Stopping))
"""
START_BOUND_S = 60.0


def stop_node(close_s: float, destroy_s: float = 0.0) -> subprocess.CompletedProcess:
    code = NODE.format(pid=id(close_s), close_s=close_s, destroy_s=destroy_s)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    start = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=START_BOUND_S)
    return subprocess.CompletedProcess(process.args, process.returncode, out,
                                       err + f"\n[stopped after {time.monotonic() - start:.1f} s]")


def test_a_slow_stop_prints_where_every_thread_is_and_still_exits_0():
    result = stop_node(SLOW_STOP_S + 1.0)  # longer than TEARDOWN_LIMIT_S: close() is never cut
    assert result.returncode == 0, result.stderr
    assert "most recent call first" in result.stderr, result.stderr
    assert "in close" in result.stderr, result.stderr


def test_a_quick_stop_prints_nothing():
    result = stop_node(0.0)
    assert result.returncode == 0, result.stderr
    assert "most recent call first" not in result.stderr, result.stderr


def test_a_hung_teardown_after_close_ends_with_status_1_and_its_stack():
    result = stop_node(0.0, destroy_s=600.0)
    assert result.returncode == 1, result.stderr
    assert "in destroy_node" in result.stderr, result.stderr
    stopped_s = float(result.stderr.rsplit("[stopped after ", 1)[1].split(" s]")[0])
    assert TEARDOWN_LIMIT_S <= stopped_s < 60.0  # bounded, not the 600 s the hang would take
