"""Latency statistics, rate meter, ensemble averaging and backend fallback (no ROS)."""

import numpy as np
import pytest
from k2muse_inference.backends import (
    BackendOptions,
    BackendUnavailable,
    ModelMismatch,
    fallback_order,
    select_backend,
)
from k2muse_inference.ensemble import Ensemble, average_members
from k2muse_inference.stats import LatencyStats, RateMeter


def test_latency_percentiles_cover_the_recent_window_only():
    stats = LatencyStats(capacity=100)
    assert stats.summary() is None
    for value in np.linspace(1.0, 100.0, 100):  # old, slow values ...
        stats.add(value)
    for value in np.arange(1, 101) * 1e-3:  # ... pushed out by 1..100 ms
        stats.add(value)
    summary = stats.summary()
    assert summary.count == 100 and stats.total == 200
    assert summary.p50_s == pytest.approx(0.0505)
    assert summary.p99_s == pytest.approx(0.09901)
    assert summary.max_s == pytest.approx(0.1)


def test_rate_meter_measures_and_decays():
    meter = RateMeter(window_s=1.0)
    for i in range(201):
        meter.tick(10.0 + i / 200.0)
    assert meter.rate_hz(11.0) == pytest.approx(200.0, rel=0.01)
    assert meter.rate_hz(11.5) == pytest.approx(100.0, rel=0.05)  # stream stopped at 11.0
    assert meter.rate_hz(13.0) == 0.0


def test_average_members_marks_non_finite_and_absurd_rows_invalid():
    outputs = np.array([[0.5, np.nan, 4.0, -0.2], [0.7, 0.1, 8.0, -0.4]])
    moments, valid = average_members(outputs, max_abs_moment_nm_per_kg=5.0)
    np.testing.assert_allclose(moments, [0.6, 0.0, 0.0, -0.3])
    np.testing.assert_array_equal(valid, [True, False, False, True])
    assert np.isfinite(moments).all()


class ScaledSum:
    """A deterministic backend double: model k returns (k+1) * mean of the window."""

    name = "double"

    def __init__(self, models):
        self.models = models
        self.batches = []

    def predict(self, batch):
        self.batches.append(batch)
        means = batch.mean(axis=(1, 2))
        return np.stack([(k + 1) * means for k in range(self.models)])


def test_ensemble_feeds_float32_and_averages_members():
    backend = ScaledSum(models=3)
    output = Ensemble(backend)(np.full((2, 2, 10), [[[0.5]], [[1.0]]]))
    assert backend.batches[0].dtype == np.float32
    np.testing.assert_allclose(output.moments_nm_per_kg, [1.0, 2.0])  # mean of 1,2,3 times x
    assert output.valid.all() and output.latency_s >= 0.0


def test_fallback_order():
    assert fallback_order("auto") == ["onnxruntime_streaming", "tensorrt", "onnxruntime",
                                      "pytorch"]
    assert fallback_order("pytorch") == ["pytorch", "onnxruntime_streaming", "tensorrt",
                                         "onnxruntime"]
    with pytest.raises(ValueError, match="unknown backend 'tflite'"):
        fallback_order("tflite")


def _factory(outcome):
    def build(ensemble, options):
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return build


def test_select_backend_falls_back_and_says_why():
    runner = ScaledSum(1)
    factories = {
        "tensorrt": _factory(BackendUnavailable("no CUDA device")),
        "onnxruntime": _factory(runner),
        "pytorch": _factory(BackendUnavailable("unused")),
    }
    selection = select_backend("auto", None, BackendOptions(), factories)
    assert selection.backend is runner
    line = selection.describe("auto")
    assert line.startswith("inference backend: double (requested auto)")
    assert "tensorrt: no CUDA device" in line


def test_select_backend_reports_every_reason_when_nothing_loads():
    factories = {name: _factory(BackendUnavailable(f"{name} broken"))
                 for name in ("tensorrt", "onnxruntime", "pytorch")}
    reasons = "onnxruntime broken; tensorrt: tensorrt broken; pytorch: pytorch broken"
    with pytest.raises(BackendUnavailable, match=reasons):
        select_backend("onnxruntime", None, BackendOptions(), factories)


def test_model_mismatch_is_not_hidden_by_fallback():
    factories = {
        "tensorrt": _factory(ModelMismatch("window 50, manifest says 100")),
        "onnxruntime": _factory(ScaledSum(1)),
        "pytorch": _factory(ScaledSum(1)),
    }
    with pytest.raises(ModelMismatch, match="manifest says 100"):
        select_backend("auto", None, BackendOptions(), factories)
