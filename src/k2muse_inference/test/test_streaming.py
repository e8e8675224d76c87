"""Streaming ensemble: the fused graph stepped one sample per call equals the windowed models.

Both estimators see the same joint-state sequences (a generated trial and a real c3d trial,
at the model rate and at twice it, with gaps, restarts and glitches); every estimate of the
streaming one must match the windowed one within 1e-5 N·m/kg, and most must come from steps.
"""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from k2muse_dataset.c3d_reader import read_c3d
from k2muse_inference.backends import (
    BackendOptions,
    BackendUnavailable,
    FusedStreamingBackend,
    ModelMismatch,
    OnnxRuntimeBackend,
    select_backend,
)
from k2muse_inference.ensemble import Ensemble, StreamCache
from k2muse_inference.estimator import HipMomentEstimator
from k2muse_inference.model import Expectations, FeatureBuilder, load_model_spec
from k2muse_inference.window import NS_PER_S, WindowEnd, WindowSpec

T0_NS = 1_700_000_000 * NS_PER_S
REAL_TRIAL = (Path(__file__).resolve().parents[4] / "shared" / "testdata" / "c3d"
              / "Biomechanical-ToolKit_BTKData_PiG_Motion-FlatFoot-Full.c3d")
PARITY_NM_PER_KG = 1e-5


@pytest.fixture(scope="module")
def spec(model_folder):
    return load_model_spec(model_folder, Expectations())


def estimator_pair(spec, streaming_backend=None, window_end=WindowEnd.NEWEST_SAMPLE):
    """Windowed and streaming estimators with the same window geometry."""
    window = WindowSpec(spec.sample_rate_hz, spec.window_length, window_end=window_end)
    features = FeatureBuilder(spec.inputs, spec.sample_rate_hz)
    windowed = Ensemble(OnnxRuntimeBackend(spec.ensemble, BackendOptions()))
    streaming = Ensemble(streaming_backend or FusedStreamingBackend(spec.ensemble,
                                                                    BackendOptions()))
    return (HipMomentEstimator(window, features, windowed, max_input_age_s=0.0),
            HipMomentEstimator(window, features, streaming, max_input_age_s=0.0))


def feed_both(pair, stamps_ns, angles):
    """Feed (stamp, (left, right)) to both estimators; return matched estimate pairs."""
    matched = []
    for stamp, (left, right) in zip(stamps_ns, angles, strict=True):
        a, b = (e.on_sample(int(stamp), (left, right), int(stamp)) for e in pair)
        assert (a is None) == (b is None), f"only one estimator answered at {stamp}"
        if a is not None:
            assert a.valid == b.valid
            matched.append((np.array(a.moments_nm_per_kg), np.array(b.moments_nm_per_kg)))
    return matched


def with_faults(angles, rate_hz):
    """Stamps and angles with a long gap (restart), a short gap, a NaN and a glitch."""
    n = len(angles)
    keep = np.ones(n, bool)
    keep[n // 2: n // 2 + int(0.1 * rate_hz)] = False  # 0.1 s: longer than max_gap_s, restart
    keep[n // 4: n // 4 + 2] = False  # two samples: bridged by interpolation
    angles = angles.copy()
    angles[int(0.7 * n), 0] = np.nan  # left leg restarts
    angles[int(0.8 * n), 1] += 0.5  # right leg: implausible jump, skipped
    stamps = T0_NS + np.round(np.arange(n) * NS_PER_S / rate_hz).astype(np.int64)
    return stamps[keep], angles[keep]


def check_parity(pair, stamps, angles):
    matched = feed_both(pair, stamps, angles)
    assert len(matched) > 100
    error = max(float(np.max(np.abs(a - b))) for a, b in matched)
    assert error <= PARITY_NM_PER_KG
    spread = np.ptp([a for a, _ in matched])
    assert spread > 0.01  # the models really respond: parity is not 0 == 0
    return pair[1].ensemble


@pytest.mark.parametrize("rate_hz", [100.0, 200.0])
def test_generated_trial_streams_with_windowed_parity(spec, trial_hip_angles, rate_hz):
    time_s, angles = trial_hip_angles
    if rate_hz != 100.0:  # a joint-state stream at twice the model rate
        fine = np.arange(0, time_s[-1] - time_s[0], 1.0 / rate_hz)
        angles = np.stack([np.interp(fine, time_s - time_s[0], angles[:, s]) for s in (0, 1)],
                          axis=1)
    stamps, faulty = with_faults(angles, rate_hz)
    ensemble = check_parity(estimator_pair(spec), stamps, faulty)
    # every restart (start, long gap, NaN, glitch, short gap) re-primes; the rest are steps
    assert ensemble.primes >= 5
    assert ensemble.steps > 10 * ensemble.primes


def test_real_c3d_trial_streams_with_windowed_parity(spec):
    if not REAL_TRIAL.is_file():
        pytest.skip(f"real c3d test data not found at {REAL_TRIAL}")
    trial = read_c3d(REAL_TRIAL)
    assert trial.point_rate_hz == spec.sample_rate_hz
    angles = trial.angles_rad["hip"][:, :, 0]
    stamps = T0_NS + np.arange(len(angles), dtype=np.int64) * 10_000_000
    ensemble = check_parity(estimator_pair(spec), stamps, angles)
    assert ensemble.primes == 2 and ensemble.steps > 300  # one prime per leg, then steps


@pytest.mark.parametrize("window_end", list(WindowEnd))
def test_jittered_stamps_stream_only_on_the_model_grid(spec, trial_hip_angles, window_end):
    """A clocked encoder read at 200 Hz with +-1.5 ms jitter: parity either way; steps only
    when windows end on the model grid, once per model period."""
    time_s, angles = trial_hip_angles
    rng = np.random.default_rng(4)
    read_s = np.arange(0.002, time_s[-1] - time_s[0], 1 / 200)
    read_s = np.sort(read_s + rng.uniform(-0.0015, 0.0015, len(read_s)))
    jittered = np.stack([np.interp(read_s, time_s - time_s[0], angles[:, s]) for s in (0, 1)],
                        axis=1)
    stamps = T0_NS + np.round(read_s * NS_PER_S).astype(np.int64)
    pair = estimator_pair(spec, window_end=window_end)
    ensemble = check_parity(pair, stamps, jittered)
    estimates = pair[1].published
    counts = pair[1].health(int(stamps[-1])).values  # what the node's diagnostics report
    assert (counts["model_steps"], counts["model_primes"]) == (str(ensemble.steps),
                                                               str(ensemble.primes))
    if window_end is WindowEnd.MODEL_GRID:
        assert ensemble.primes == 2 and ensemble.steps > 10 * ensemble.primes
        instants = len(np.unique(stamps // 10_000_000))  # 10 ms model periods crossed
        assert abs(estimates - (instants - spec.window_length)) <= 2  # one per period
    else:
        assert ensemble.steps < ensemble.primes / 10  # jitter: nearly every window re-primed


def test_streaming_backend_is_the_default_and_predicts_windows(spec):
    selection = select_backend("auto", spec.ensemble, BackendOptions())
    assert selection.backend.name == "onnxruntime_streaming"
    rng = np.random.default_rng(0)
    windows = (0.2 + 0.3 * rng.standard_normal((4, 2, spec.window_length))).astype(np.float32)
    windowed = OnnxRuntimeBackend(spec.ensemble, BackendOptions()).predict(windows)
    np.testing.assert_allclose(selection.backend.predict(windows), windowed,
                               atol=PARITY_NM_PER_KG)


def test_mode_subset_selects_its_columns(model_folder, spec):
    subset = load_model_spec(model_folder, Expectations(mode_keys=("DS_5", "LG_0")))
    windows = np.tile(np.linspace(-0.2, 0.4, spec.window_length, dtype=np.float32), (1, 2, 1))
    full = FusedStreamingBackend(spec.ensemble, BackendOptions()).predict(windows)
    part = FusedStreamingBackend(subset.ensemble, BackendOptions()).predict(windows)
    keys = list(spec.ensemble.mode_keys)
    np.testing.assert_array_equal(part, full[[keys.index("DS_5"), keys.index("LG_0")]])


def test_folder_without_fused_graph_falls_back_to_windowed(model_folder, tmp_path):
    old = shutil.copytree(model_folder, tmp_path / "old")
    manifest_path = old / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    file = manifest.pop("fused_streaming")["file"]
    del manifest["sha256"][file]
    (old / file).unlink()
    manifest_path.write_text(json.dumps(manifest))
    ensemble = load_model_spec(old, Expectations()).ensemble
    selection = select_backend("auto", ensemble, BackendOptions())
    assert selection.backend.name != "onnxruntime_streaming"
    assert "no fused_streaming graph" in selection.describe("auto")


def test_fused_entry_naming_an_unchecksummed_file_is_refused(model_folder, tmp_path):
    bad = shutil.copytree(model_folder, tmp_path / "bad")
    manifest_path = bad / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["fused_streaming"]["file"] = "onnx/elsewhere.onnx"
    manifest_path.write_text(json.dumps(manifest))
    ensemble = load_model_spec(bad, Expectations()).ensemble
    with pytest.raises(ModelMismatch, match="no sha256 entry"):
        FusedStreamingBackend(ensemble, BackendOptions())
    with pytest.raises(BackendUnavailable):
        FusedStreamingBackend(replace(ensemble, manifest={"sha256": {}}), BackendOptions())


def test_stream_cache_finds_the_continuing_window_and_forgets_the_oldest():
    cache = StreamCache(capacity=2)
    window = np.arange(20, dtype=np.float32).reshape(2, 10)
    cache.keep(window, ["first"])
    shifted = np.concatenate([window[:, 1:], [[99.0], [98.0]]], axis=1).astype(np.float32)
    assert cache.find(shifted) == ["first"]
    assert cache.find(window) is None  # the same window again does not continue itself
    cache.keep(window + 1, ["second"])
    cache.keep(window + 2, ["third"])
    assert cache.find(shifted) is None  # the oldest stream was dropped
    assert cache.find(np.concatenate([window[:, 1:] + 2, shifted[:, -1:]], axis=1)) == ["third"]
