"""Sliding window: resampling, reordering, duplicates, gaps and bad samples (no ROS)."""

import math

import numpy as np
import pytest
from k2muse_inference.window import NS_PER_S, LegHistory, Verdict, WindowEnd, WindowSpec

# A 49-sample model window is resampled as 50 points: the window plus the sample before it.
SPEC = WindowSpec(sample_rate_hz=100.0, window_length=49, max_gap_s=0.05)


def gait_angle(t_s):
    """A hip-flexion-like signal (rad) with enough curvature to expose interpolation errors."""
    return 0.35 * np.sin(2 * np.pi * 0.9 * np.asarray(t_s)) + 0.1


def feed(history, rate_hz, n, start_s=1.0):
    stamps = [int(round((start_s + i / rate_hz) * NS_PER_S)) for i in range(n)]
    verdicts = [history.add(s, float(gait_angle(s / NS_PER_S))) for s in stamps]
    return stamps, verdicts


def test_window_at_model_rate_holds_the_raw_samples_exactly():
    history = LegHistory(SPEC)
    stamps, _ = feed(history, 100.0, 120)
    expected = gait_angle(np.array(stamps[-50:]) / NS_PER_S)
    np.testing.assert_array_equal(history.window(), expected)


def test_faster_input_is_decimated_onto_the_model_grid():
    history = LegHistory(SPEC)
    stamps, _ = feed(history, 200.0, 240)
    # 200 Hz input, 100 Hz model: the window is every other sample ending at the newest one.
    expected = gait_angle(np.array(stamps[-99::2]) / NS_PER_S)
    np.testing.assert_array_equal(history.window(), expected)


def test_slower_input_is_interpolated_and_window_ends_at_newest_stamp():
    history = LegHistory(SPEC)
    stamps, _ = feed(history, 60.0, 90)
    window = history.window()
    grid_s = stamps[-1] / NS_PER_S - np.arange(49, -1, -1) / 100.0
    assert window[-1] == gait_angle(stamps[-1] / NS_PER_S)
    # Linear interpolation of a smooth gait signal sampled at 60 Hz: error well under 1 mrad.
    np.testing.assert_allclose(window, gait_angle(grid_s), atol=1e-3)


def test_window_is_invalid_until_it_covers_the_model_span():
    history = LegHistory(SPEC)
    _, verdicts = feed(history, 100.0, 49)
    assert all(v is Verdict.ACCEPTED for v in verdicts)
    assert history.window() is None
    assert history.covered_fraction() == pytest.approx(48 / 49)
    feed(history, 100.0, 1, start_s=1.49)
    assert history.window() is not None


def test_duplicate_and_out_of_order_stamps_are_dropped_without_touching_the_window():
    history = LegHistory(SPEC)
    stamps, _ = feed(history, 100.0, 60)
    before = history.window().copy()
    assert history.add(stamps[-1], 2.0) is Verdict.DUPLICATE
    assert history.add(stamps[-5], 2.0) is Verdict.OUT_OF_ORDER
    np.testing.assert_array_equal(history.window(), before)
    assert history.counts[Verdict.DUPLICATE] == 1
    assert history.counts[Verdict.OUT_OF_ORDER] == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_sample_invalidates_the_window_until_refilled(bad):
    history = LegHistory(SPEC)
    stamps, _ = feed(history, 100.0, 60)
    assert history.add(stamps[-1] + NS_PER_S // 100, bad) is Verdict.NON_FINITE
    assert history.window() is None
    _, verdicts = feed(history, 100.0, 49, start_s=stamps[-1] / NS_PER_S + 0.02)
    assert history.window() is None
    feed(history, 100.0, 1, start_s=stamps[-1] / NS_PER_S + 0.02 + 0.49)
    assert np.isfinite(history.window()).all()


def test_absurd_angle_and_implausible_jump_are_rejected():
    history = LegHistory(SPEC)
    stamps, _ = feed(history, 100.0, 60)
    assert history.add(stamps[-1] + 10_000_000, 4.0) is Verdict.OUT_OF_RANGE
    assert history.window() is None
    history = LegHistory(SPEC)
    stamps, _ = feed(history, 100.0, 60)
    # 1 rad in 10 ms is 100 rad/s: an encoder glitch, not a hip.
    assert history.add(stamps[-1] + 10_000_000, gait_angle(stamps[-1] / NS_PER_S) + 1.0) is (
        Verdict.IMPLAUSIBLE_JUMP
    )
    assert history.window() is not None  # the glitch is skipped, the window stays good


def test_gap_restarts_the_window():
    history = LegHistory(SPEC)
    stamps, _ = feed(history, 100.0, 60)
    verdict = history.add(stamps[-1] + int(0.2 * NS_PER_S), 0.1)
    assert verdict is Verdict.RESTARTED_AFTER_GAP and verdict.kept
    assert len(history) == 1 and history.window() is None


def test_long_streams_keep_a_bounded_history():
    history = LegHistory(SPEC, initial_capacity=16)
    stamps, _ = feed(history, 1000.0, 5000)
    assert len(history) < 4 * 500  # 0.49 s at 1 kHz is ~490 samples
    grid_s = stamps[-1] / NS_PER_S - np.arange(49, -1, -1) / 100.0
    np.testing.assert_allclose(history.window(), gait_angle(grid_s), atol=1e-12)


def test_spec_refuses_nonsense():
    with pytest.raises(ValueError, match="sample_rate_hz"):
        WindowSpec(sample_rate_hz=0.0, window_length=10)
    with pytest.raises(ValueError, match="window_length"):
        WindowSpec(sample_rate_hz=100.0, window_length=1)
    with pytest.raises(ValueError, match="min_angle_rad"):
        WindowSpec(sample_rate_hz=100.0, window_length=10, min_angle_rad=1.0, max_angle_rad=0.0)


def test_late_sender_burst_is_not_mistaken_for_a_glitch():
    history = LegHistory(SPEC)
    stamps, _ = feed(history, 100.0, 60)
    # A late sender flushes three 10 ms-apart readings within 100 us: 0.02 rad steps.
    last = history.window()[-1]
    for k in range(1, 4):
        assert history.add(stamps[-1] + 10_000_000 + k * 50_000, last + 0.02 * k) is (
            Verdict.ACCEPTED
        )


def jittered_stamps(rate_hz, n, jitter_s, seed=0, start_s=1.0):
    """Stamps of a clocked encoder read: nominal rate, uniform jitter, strictly increasing."""
    rng = np.random.default_rng(seed)
    nominal = start_s + np.arange(n) / rate_hz
    return np.round((nominal + rng.uniform(-jitter_s, jitter_s, n)) * NS_PER_S).astype(np.int64)


def test_model_grid_windows_continue_each_other_whatever_the_jitter():
    spec = WindowSpec(100.0, 49, window_end=WindowEnd.MODEL_GRID)
    history = LegHistory(spec)
    windows = {}
    for stamp in jittered_stamps(200.0, 400, jitter_s=0.0015):
        assert history.add(int(stamp), float(gait_angle(stamp / NS_PER_S))).kept
        end = history.window_end_ns()
        window = history.window()
        assert end % 10_000_000 == 0 and 0 <= stamp - end < 10_000_000
        if window is not None:
            assert windows.setdefault(end, window.tobytes()) == window.tobytes()
    ends = sorted(windows)
    assert len(ends) > 100 and np.all(np.diff(ends) == 10_000_000)
    for before, after in zip(ends[:-1], ends[1:], strict=True):
        previous = np.frombuffer(windows[before])
        following = np.frombuffer(windows[after])
        np.testing.assert_array_equal(following[:-1], previous[1:])  # bit for bit
    # ... and each instant is the interpolated signal at that instant
    final_grid_s = (ends[-1] + spec.grid_offsets_ns()) / NS_PER_S
    np.testing.assert_allclose(np.frombuffer(windows[ends[-1]]), gait_angle(final_grid_s),
                               atol=1e-3)


def test_newest_sample_windows_of_jittered_input_do_not_continue():
    history = LegHistory(SPEC)
    windows = []
    for stamp in jittered_stamps(100.0, 120, jitter_s=0.0015):
        history.add(int(stamp), float(gait_angle(stamp / NS_PER_S)))
        assert history.window_end_ns() == stamp
        if history.window() is not None:
            windows.append(history.window())
    pairs = zip(windows[:-1], windows[1:], strict=True)
    assert not any(np.array_equal(after[:-1], before[1:]) for before, after in pairs)


def test_model_grid_needs_a_whole_nanosecond_period():
    with pytest.raises(ValueError, match="whole nanoseconds"):
        WindowSpec(30.0, 49, window_end=WindowEnd.MODEL_GRID)
    assert WindowSpec(30.0, 49).window_end_ns(123) == 123
