"""Console entry points of the nodes: Ctrl-C is a clean stop from the first line on.

A node's module takes a while to import (rclpy, numpy, the estimator's backends), and a SIGINT
in that time (Ctrl-C, or ``ros2 launch`` stopping right after it started the node) used to raise
KeyboardInterrupt wherever the import was, printing a traceback. This module imports only the
standard library: an entry point made by ``node_entry`` turns SIGINT and SIGTERM into a stop
request before it imports the node's module, and ``node_runner.run_node`` reads the same
request. A node stopped during its imports is never started and exits 0.
"""

from __future__ import annotations

import importlib
import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
stop_requested = threading.Event()


def request_stop_on_signals() -> threading.Event:
    """From now on SIGINT and SIGTERM only set ``stop_requested``, which is returned."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda _sig, _frame: stop_requested.set())
    return stop_requested


def node_entry(module: str) -> Callable[[list[str] | None], int]:
    """The console entry point of the node whose ``main(args)`` is in ``module``."""

    def main(args: list[str] | None = None) -> int:
        request_stop_on_signals()
        node_main = importlib.import_module(module).main
        if stop_requested.is_set():
            return 0  # stopped before the node existed: nothing to close
        return node_main(args)

    main.node_module = module
    main.__doc__ = f"Run the node of ``{module}`` until SIGINT or SIGTERM."
    return main
