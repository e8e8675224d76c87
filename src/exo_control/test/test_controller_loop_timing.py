"""PeriodicLoop and LoopStats: cycles happen, statistics are computed from what was recorded."""

import time

import pytest
from exo_control.loop_timing import LoopStats, PeriodicLoop


def test_loop_stats_from_recorded_cycles():
    stats = LoopStats(0.001)
    for start, end in [(0.0, 0.0001), (0.001, 0.0012), (0.0025, 0.0026), (0.0045, 0.0062)]:
        stats.record(start, end, deadline_s=start)
    summary = stats.summary()
    assert summary["cycles"] == 3
    assert summary["mean_period_s"] == pytest.approx(0.0015)
    assert summary["max_jitter_s"] == pytest.approx(0.001)
    assert summary["overruns"] == 1  # the last one ended 1.7 ms after its start
    stats.reset()
    assert stats.summary() == {"cycles": 0, "overruns": 0, "missed_deadlines": 0}


def test_periodic_loop_calls_back_and_stops():
    calls = []
    loop = PeriodicLoop(0.002, calls.append)
    loop.start()
    time.sleep(0.3)
    loop.stop()
    count = len(calls)
    time.sleep(0.05)
    assert len(calls) == count > 3
    assert all(b > a for a, b in zip(calls, calls[1:], strict=False))


def test_periodic_loop_keeps_the_error_of_a_failing_cycle():
    def fail(now_s):
        raise RuntimeError("boom")

    loop = PeriodicLoop(0.001, fail)
    loop.start()
    time.sleep(0.05)
    loop.stop()
    assert isinstance(loop.error, RuntimeError)
