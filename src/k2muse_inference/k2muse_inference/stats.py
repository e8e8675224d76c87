"""Running statistics for diagnostics: latency percentiles and event rates."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencySummary:
    """Latency percentiles in seconds over the most recent samples."""

    count: int
    p50_s: float
    p90_s: float
    p99_s: float
    max_s: float


class LatencyStats:
    """Keeps the last ``capacity`` latencies so percentiles describe current behaviour."""

    def __init__(self, capacity: int = 2000):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._values = np.zeros(capacity, dtype=np.float64)
        self._next = 0
        self._filled = 0
        self.total = 0

    def add(self, latency_s: float) -> None:
        """Record one latency."""
        self._values[self._next] = latency_s
        self._next = (self._next + 1) % len(self._values)
        self._filled = min(self._filled + 1, len(self._values))
        self.total += 1

    def summary(self) -> LatencySummary | None:
        """Percentiles of the retained latencies, None before the first one."""
        if self._filled == 0:
            return None
        values = self._values[: self._filled]
        p50, p90, p99 = np.percentile(values, [50.0, 90.0, 99.0])
        return LatencySummary(self._filled, float(p50), float(p90), float(p99), float(values.max()))


class RateMeter:
    """Event rate (Hz) over a sliding time window, from monotonic event times in seconds."""

    def __init__(self, window_s: float = 2.0):
        if not window_s > 0.0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, now_s: float) -> None:
        """Record one event at ``now_s``."""
        self._times.append(now_s)
        self._expire(now_s)

    def rate_hz(self, now_s: float) -> float:
        """Events per second over the last ``window_s`` (0 when fewer than two events)."""
        self._expire(now_s)
        if len(self._times) < 2:
            return 0.0
        # Rate from the count over the full window, so a stopped stream decays to zero.
        span = max(now_s, self._times[-1]) - self._times[0]
        return (len(self._times) - 1) / span if span > 0.0 else 0.0

    def _expire(self, now_s: float) -> None:
        while self._times and self._times[0] < now_s - self.window_s:
            self._times.popleft()
