"""The estimator core on a real ONNX ensemble and a generated trial, with injected faults."""

import math

import numpy as np
import pytest
from k2muse_inference.backends import BackendOptions, OnnxRuntimeBackend
from k2muse_inference.ensemble import Ensemble
from k2muse_inference.estimator import ERROR, OK, WARN, HipMomentEstimator
from k2muse_inference.model import Expectations, FeatureBuilder, load_model_spec
from k2muse_inference.window import NS_PER_S, Verdict, WindowSpec

T0_NS = 1_700_000_000 * NS_PER_S
WINDOW = 100


@pytest.fixture(scope="module")
def make_estimator(model_folder):
    spec = load_model_spec(model_folder, Expectations())
    backend = OnnxRuntimeBackend(spec.ensemble, BackendOptions())

    def make(max_abs_moment=5.0, **kwargs):
        window = WindowSpec(spec.sample_rate_hz, spec.window_length)
        return HipMomentEstimator(window, FeatureBuilder(spec.inputs, spec.sample_rate_hz),
                                  Ensemble(backend, max_abs_moment), **kwargs)

    return make


def run(estimator, angles, rate_hz, faults=None, t0_ns=T0_NS):
    """Feed (N, 2) angles at rate_hz with on-time arrival; faults: index -> (left, right)."""
    faults = faults or {}
    results = []
    for i, pair in enumerate(angles):
        stamp = t0_ns + round(i * NS_PER_S / rate_hz)
        left, right = faults.get(i, pair)
        results.append(estimator.on_sample(stamp, (left, right), stamp + 300_000))
    return results


def stacked(results, side):
    return np.array([r.moments_nm_per_kg[side] for r in results])


def test_model_rate_input_matches_offline_inference(make_estimator, trial_hip_angles,
                                                    offline_reference):
    _, angles = trial_hip_angles
    angles = angles[:300]
    estimator = make_estimator()
    results = run(estimator, angles, 100.0)
    assert all(r is None for r in results[:WINDOW])
    estimates = results[WINDOW:]
    assert all(r.valid == (True, True) for r in estimates)
    assert [r.stamp_ns for r in estimates] == [T0_NS + i * 10_000_000 for i in range(100, 300)]
    for side in (0, 1):
        reference = offline_reference(angles[:, side])
        assert np.max(np.abs(stacked(estimates, side) - reference)) < 1e-4
    health = estimator.health(T0_NS + 3 * NS_PER_S)
    assert health.level == OK and health.values["left_state"] == "valid"
    assert float(health.values["latency_p99_ms"]) > 0.0


def test_double_rate_input_estimates_every_message_on_the_model_grid(
        make_estimator, trial_hip_angles, offline_reference):
    time_s, angles = trial_hip_angles
    fine_t = np.arange(0, 2 * 250) / 200.0
    fine = np.stack([np.interp(fine_t, time_s, angles[:, s]) for s in (0, 1)], axis=1)
    results = run(make_estimator(), fine, 200.0)
    estimates = results[2 * WINDOW:]
    assert all(r is not None and all(r.valid) for r in estimates)
    # Even 200 Hz samples are the 100 Hz ones; their windows must be the model-rate windows.
    reference = offline_reference(fine[::2, 0])
    assert np.max(np.abs(stacked(estimates[::2], 0) - reference)) < 1e-4


def test_nan_invalidates_one_leg_until_its_window_refills(make_estimator, trial_hip_angles):
    _, angles = trial_hip_angles
    estimator = make_estimator()
    results = run(estimator, angles[:400], 100.0, faults={150: (math.nan, angles[150, 1])})
    assert [r.valid for r in results[150:251]] == [(False, True)] * 101
    assert results[251].valid == (True, True)
    assert all(np.isfinite(r.moments_nm_per_kg).all() for r in results[WINDOW:])
    assert all(r.moments_nm_per_kg[0] == 0.0 for r in results[150:251])
    assert estimator.legs[0].counts[Verdict.NON_FINITE] == 1


def test_duplicate_and_reordered_messages_change_nothing(make_estimator, trial_hip_angles):
    _, angles = trial_hip_angles
    clean = run(make_estimator(), angles[:200], 100.0)
    estimator = make_estimator()
    results = []
    for i in range(200):
        stamp = T0_NS + i * 10_000_000
        results.append(estimator.on_sample(stamp, tuple(angles[i]), stamp))
        if i in (120, 160):
            assert estimator.on_sample(stamp, (0.3, 0.3), stamp) is None  # duplicate
            assert estimator.on_sample(stamp - 30_000_000, (0.3, 0.3), stamp) is None  # late
    np.testing.assert_array_equal(stacked(results[WINDOW:], 0), stacked(clean[WINDOW:], 0))
    values = estimator.health(T0_NS + 2 * NS_PER_S).values
    assert values["left_duplicate_samples"] == "2" and values["left_out_of_order_samples"] == "2"


def test_absurd_angle_and_missing_leg(make_estimator, trial_hip_angles):
    _, angles = trial_hip_angles
    estimator = make_estimator()
    run(estimator, angles[:150], 100.0)
    stamp = T0_NS + 150 * 10_000_000
    estimate = estimator.on_sample(stamp, (7.0, angles[150, 1]), stamp)
    assert estimate.valid == (False, True)
    health = estimator.health(stamp)
    assert health.level == WARN and "left: invalid: angle out of range" in health.message
    estimate = estimator.on_sample(stamp + 10_000_000, (None, angles[151, 1]), stamp)
    assert estimate.valid == (False, True)


def test_stale_input_publishes_nothing_and_says_why(make_estimator, trial_hip_angles):
    _, angles = trial_hip_angles
    estimator = make_estimator(stale_timeout_s=0.1, max_input_age_s=0.5)
    assert estimator.health(T0_NS).level == ERROR  # nothing received yet
    run(estimator, angles[:150], 100.0)
    last = T0_NS + 149 * 10_000_000
    assert not estimator.is_stale(last + 50_000_000)
    assert estimator.is_stale(last + 200_000_000)
    health = estimator.health(last + 200_000_000)
    assert health.level == ERROR and health.message.startswith("stale input: no joint state")
    # Samples that arrive 0.8 s after their stamp are stale too: no estimate.
    old = last + 10_000_000
    assert estimator.on_sample(old, tuple(angles[150]), old + 800_000_000) is None
    health = estimator.health(old + 800_000_000)
    assert health.level == ERROR and "stamps 0.80 s old" in health.message


def test_rejected_model_output_is_never_published(make_estimator, trial_hip_angles):
    _, angles = trial_hip_angles
    estimator = make_estimator(max_abs_moment=1e-6)
    assert all(r is None for r in run(estimator, angles[:150], 100.0))
    assert estimator.rejected_outputs == 2 * 50
    assert estimator.leg_state(0) == "invalid: model output rejected"


def test_future_stamp_is_dropped_counted_and_estimation_recovers(make_estimator,
                                                                  trial_hip_angles):
    _, angles = trial_hip_angles
    estimator = make_estimator(max_stamp_lead_s=0.1)
    results = run(estimator, angles[:150], 100.0)
    assert results[-1].valid == (True, True)
    last = T0_NS + 149 * 10_000_000
    arrival = last + 10_300_000
    hour_ahead = last + 3600 * NS_PER_S
    assert estimator.on_sample(hour_ahead, tuple(angles[150]), arrival) is None
    assert estimator.future_stamps == 1
    health = estimator.health(arrival)
    assert health.level == ERROR and "3599.99 s in the future" in health.message
    assert health.values["future_stamps_dropped"] == "1"
    # The very next sample on the normal clock is estimated again, and so is the rest.
    later = run(estimator, angles[151:250], 100.0, t0_ns=last + 20_000_000)
    assert all(r is not None and r.valid == (True, True) for r in later)
    assert estimator.health(last + 100 * 10_000_000).level == OK
    # Up to the tolerance ahead is clock skew, not a fault.
    skewed = last + 101 * 10_000_000
    assert estimator.on_sample(skewed, tuple(angles[250]), skewed - 50_000_000) is not None
    assert estimator.future_stamps == 1
    with pytest.raises(ValueError, match="max_stamp_lead_s"):
        make_estimator(max_stamp_lead_s=0.0)


def test_live_features_drop_only_the_leading_predecessor():
    angles = np.array([0.0, 0.01, 0.03, 0.06])
    features = FeatureBuilder(["hip_angle", "hip_velocity"], 100.0)(angles)
    assert features.dtype == np.float32 and features.shape == (2, 3)
    np.testing.assert_allclose(features, [[0.01, 0.03, 0.06], [1.0, 2.0, 3.0]], rtol=1e-6)
