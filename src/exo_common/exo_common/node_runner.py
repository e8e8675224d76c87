"""The one entry point of every node in the workspace: spin until SIGINT or SIGTERM, exit clean.

rclpy's own signal handlers shut the context down from a helper thread and raise
KeyboardInterrupt wherever the main thread happens to be. Inside a pybind11 call (taking a
message, say) that surfaces as an unrelated RuntimeError while rclpy.ok() is still true, so a
node stopped by ``ros2 launch`` could exit with a traceback, or not stop before launch escalates
to SIGTERM. Here a signal only sets a flag (``node_entry.stop_requested``, set from the start of
the process by the console entry point), which the spin loop reads at least every ``POLL_S``:
the node stops within a fraction of a second, runs its ``close()``, exits 0.

Everything built at startup (imported modules, torch, the model) is frozen out of the garbage
collector: the collector's pauses while spinning stay short, and the interpreter's exit does
not spend most of a second scanning torch's objects (measured: 0.6 s down to 0.1 s).
"""

from __future__ import annotations

import faulthandler
import gc
import os
import signal
import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from exo_common.node_entry import request_stop_on_signals
from exo_common.params import ConfigError

POLL_S = 0.1
# ros2 launch escalates to SIGTERM 5 s after SIGINT; a stop slower than this prints the stack
# of every thread, so a rare hang on a loaded machine says where it was.
SLOW_STOP_S = 3.0
# Once close() has done the node's own work (released the cable, written the bag), what is
# left is the middleware's teardown, which on rare occasions hangs inside DDS (a CI run:
# destroy_node() still stuck after SIGTERM, until launch's SIGKILL 15 s on). Past this
# limit the process prints every stack and exits with status 1: bounded, and said.
TEARDOWN_LIMIT_S = 2.0


def run_node(node_class: Callable[[], Node], args: list[str] | None = None, *,
             user_errors: tuple[type[Exception], ...] = (),
             until: Callable[[Node], bool] | None = None) -> int:
    """Create ``node_class()`` and spin it until a stop signal (or ``until(node)`` is true).

    A bad parameter (ConfigError) exits 2 and one of ``user_errors`` (a missing file, say)
    exits 1, each reported as one line on stderr instead of a traceback. The node's
    ``close()``, when it has one, runs on every exit.
    """
    errors = {ConfigError: 2, **{kind: 1 for kind in user_errors}}
    stop = request_stop_on_signals()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    executor = SingleThreadedExecutor()
    try:
        node = node_class()
        gc.freeze()
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok() and not (until is not None and until(node)):
            executor.spin_once(timeout_sec=POLL_S)
    except tuple(errors) as exc:
        status = next(v for kind, v in errors.items() if isinstance(exc, kind))
        print(f"{os.path.basename(sys.argv[0])}: {exc}", file=sys.stderr)
        return status
    except ExternalShutdownException:
        pass
    finally:
        faulthandler.dump_traceback_later(SLOW_STOP_S)
        executor.shutdown()
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            # a C-level timer: it fires even while a middleware call holds the interpreter
            faulthandler.dump_traceback_later(TEARDOWN_LIMIT_S, exit=True)
            node.destroy_node()
        rclpy.try_shutdown()
        faulthandler.cancel_dump_traceback_later()
        # Ctrl-C reaches the whole process group and ros2 launch forwards its own SIGINT: that
        # second one must not kill the node while the interpreter exits (which resets Python
        # handlers to the default, fatal one). SIGTERM stays able to end a stuck exit.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return 0


class ManagedNode(LifecycleNode):
    """A lifecycle node: configure validates, activate starts the work, the rest stops safely.

    Subclasses implement ``on_configure``/``on_activate``/``on_deactivate``/``on_cleanup``/
    ``on_shutdown`` and ``close`` (what SIGINT runs). With ``autostart`` the node configures
    and activates itself, so ``ros2 run`` and launch files need no lifecycle manager; a failed
    transition then ends the process with its reason, like an absurd parameter.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.transition_error: str | None = None

    def refuse(self, reason: str) -> TransitionCallbackReturn:
        """Log why a transition is refused and return FAILURE."""
        self.transition_error = reason
        self.get_logger().error(reason)
        return TransitionCallbackReturn.FAILURE

    def autostart(self, enabled: bool) -> None:
        """Configure and activate now when ``enabled``; raise ConfigError if either fails."""
        if not enabled:
            self.get_logger().info("waiting for lifecycle transitions (autostart false)")
            return
        for transition in (self.trigger_configure, self.trigger_activate):
            if transition() != TransitionCallbackReturn.SUCCESS:
                raise ConfigError(self.transition_error
                                  or f"{self.get_name()}: {transition.__name__} failed")


def request_realtime_priority(node: Node, priority: int) -> bool:
    """Put every thread of this process, and the threads it starts later, under SCHED_FIFO.

    The nodes on the path from hip angle to cable force ask for this before starting any loop
    thread. All threads, not just the caller: the middleware's receive threads, started with
    the context, deliver the messages, and a loop thread must never wait for the GIL held by a
    descheduled normal-priority thread of its own process; perception, logging or a UI beside
    the graph then cannot starve it. Threads started later inherit the policy. Priority 0 keeps
    normal scheduling. Without permission (CAP_SYS_NICE, root, or an rtprio limit) the node
    logs a warning and runs with normal scheduling; returns whether the priority applies.
    """
    if priority <= 0:
        return False
    try:
        thread_ids = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        thread_ids = [0]  # no procfs: the calling thread only
    try:
        for thread_id in thread_ids:
            os.sched_setscheduler(thread_id, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as exc:
        node.get_logger().warning(f"realtime_priority {priority} not applied ({exc}); running"
                                  " with normal scheduling")
        return False
    return True
