"""Soft real-time periodic loop with period statistics (no ROS).

rclpy timers share one executor with every subscription callback, so a 1 kHz loop on them
inherits all of that jitter. The controller and the simulated actuator instead run their cycle
in a thread of their own that sleeps to absolute deadlines (no drift) and records how late each
cycle starts and how long its work takes, the figures bench/bench_controller.py reports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np


class LoopStats:
    """Start-to-start periods and work times of the most recent cycles (a ring buffer)."""

    def __init__(self, nominal_period_s: float, capacity: int = 200_000) -> None:
        self.nominal_period_s = nominal_period_s
        self._periods = np.zeros(capacity)
        self._work = np.zeros(capacity)
        self.reset()

    def reset(self) -> None:
        """Forget every cycle recorded so far (e.g. after a warm-up)."""
        self._count = 0
        self.overruns = 0  # cycles whose work ended after the next deadline
        self.missed_deadlines = 0  # deadlines skipped because a cycle started or ended late
        self.max_period_s = 0.0
        self._last_start: float | None = None

    def record(self, start_s: float, end_s: float, deadline_s: float) -> None:
        """Account one cycle that started at ``start_s``, ended at ``end_s``."""
        if self._last_start is not None:
            i = self._count % self._periods.size
            self._periods[i] = start_s - self._last_start
            self._work[i] = end_s - start_s
            self._count += 1
            self.max_period_s = max(self.max_period_s, start_s - self._last_start)
        self._last_start = start_s
        if end_s > deadline_s + self.nominal_period_s:
            self.overruns += 1

    def summary(self) -> dict[str, float]:
        """Mean period and rate, p99/max jitter (|period - nominal|), work time, overruns."""
        n = min(self._count, self._periods.size)
        if n == 0:
            return {"cycles": 0, "overruns": self.overruns,
                    "missed_deadlines": self.missed_deadlines}
        periods = self._periods[:n]
        jitter = np.abs(periods - self.nominal_period_s)
        work = self._work[:n]
        return {
            "cycles": int(self._count),
            "nominal_period_s": self.nominal_period_s,
            "mean_period_s": float(periods.mean()),
            "achieved_rate_hz": float(1.0 / periods.mean()),
            "std_period_s": float(periods.std()),
            "p99_jitter_s": float(np.percentile(jitter, 99)),
            "max_jitter_s": float(jitter.max()),
            "max_period_s": float(self.max_period_s),
            "mean_work_s": float(work.mean()),
            "p99_work_s": float(np.percentile(work, 99)),
            "overruns": int(self.overruns),
            "missed_deadlines": int(self.missed_deadlines),
        }


class PeriodicLoop:
    """Calls ``cycle(now_s)`` every ``period_s`` in a daemon thread until ``stop()``."""

    def __init__(self, period_s: float, cycle: Callable[[float], None], name: str = "loop",
                 spin_s: float = 0.0) -> None:
        if period_s <= 0.0:
            raise ValueError(f"period must be > 0 s, got {period_s}")
        self.period_s = period_s
        self.spin_s = spin_s  # busy-wait this long before each deadline (less jitter, more CPU)
        self.stats = LoopStats(period_s)
        self._cycle = cycle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        deadline = time.monotonic() + self.period_s
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining > self.spin_s:
                time.sleep(remaining - self.spin_s)
            while time.monotonic() < deadline:
                pass
            start = time.monotonic()
            try:
                self._cycle(start)
            except BaseException as exc:  # noqa: BLE001 - kept for the owner, loop ends
                self.error = exc
                return
            end = time.monotonic()
            self.stats.record(start, end, deadline)
            deadline += self.period_s
            if end > deadline:  # late: skip the missed deadlines instead of bursting to catch up
                missed = int((end - deadline) / self.period_s + 1.0)
                self.stats.missed_deadlines += missed
                deadline += self.period_s * missed
