"""Unit tests of the baseline building blocks on arrays: features, phases, metrics, models."""

import numpy as np
import pytest
from k2muse_learning.baselines.evaluation import classification_metrics, regression_metrics
from k2muse_learning.baselines.features import (
    EmgFilterSpec,
    WindowSpec,
    aus_frame_features,
    aus_window_features,
    emg_window_features,
    filter_emg,
)
from k2muse_learning.baselines.models import build_model, model_names
from k2muse_learning.baselines.phases import PHASE_NAMES, UNLABELLED, label_gait_phases


def test_window_ends_start_at_first_full_window_and_step_by_stride():
    spec = WindowSpec(length_s=0.2, stride=5)
    ends = spec.window_ends(100)
    assert ends[0] == 19 and np.all(np.diff(ends) == 5) and ends[-1] < 100


@pytest.mark.parametrize("kwargs", [{"length_s": 0.0}, {"stride": 0}, {"stride": 1.5}])
def test_window_spec_rejects_absurd_values(kwargs):
    with pytest.raises(ValueError):
        WindowSpec(**kwargs)


def test_emg_filter_removes_mains_hum_and_drift_but_keeps_band():
    rate = 2000.0
    t = np.arange(0, 4, 1 / rate)
    band = np.sin(2 * np.pi * 100 * t)
    raw = band + 5 * np.sin(2 * np.pi * 50 * t) + 20 * np.sin(2 * np.pi * 2 * t) + 3.0
    out = filter_emg(raw[:, None], rate, EmgFilterSpec())[:, 0]
    core = slice(2000, -2000)
    assert np.sqrt(np.mean((out[core] - band[core]) ** 2)) < 0.1


def test_emg_filter_rejects_band_above_nyquist():
    with pytest.raises(ValueError, match="Nyquist"):
        filter_emg(np.zeros((1000, 2)), 500.0, EmgFilterSpec(band_hz=(20.0, 450.0)))


def test_emg_features_match_hand_computation():
    rate = 1000.0
    signal = np.tile([1.0, -1.0, 2.0, -2.0], 50)[:, None]  # 200 samples
    feats = emg_window_features(signal, rate, np.array([0.0989, 0.1999]), 0.1, 0.5)
    assert np.isnan(feats[0]).all()  # window would start before the recording
    mav, rms, wl, zc, ssc = feats[1]
    window = signal[100:200, 0]
    assert mav == pytest.approx(1.5)
    assert rms == pytest.approx(np.sqrt(2.5))
    assert wl == pytest.approx(np.abs(np.diff(window)).sum())
    assert zc == 99 and ssc == 98


def test_zero_crossing_threshold_ignores_noise_level_wiggles():
    wiggle = np.tile([0.1, -0.1], 100)[:, None]
    feats = emg_window_features(wiggle, 1000.0, np.array([0.1999]), 0.2, 1.0)
    assert feats[0, 3] == 0 and feats[0, 4] == 0


def test_aus_envelope_features_track_an_echo_moving_in_depth():
    depth = np.arange(1000)
    frames = []
    for centre in (200, 500, 800):
        pulse = np.exp(-(((depth - centre) / 10.0) ** 2)) * np.sin(2 * np.pi * 0.2 * depth)
        frames.append(np.stack([pulse] * 4))
    feats = aus_frame_features(np.array(frames), depth_bins=10)
    assert feats.shape == (3, 4 * 11)
    centroid = feats[:, 10]  # channel 0, last feature
    assert np.allclose(centroid, [0.2005, 0.5005, 0.8005], atol=0.01)
    assert np.argmax(feats[0, :10]) == 2 and np.argmax(feats[2, :10]) == 8


def test_aus_windows_are_causal_and_nan_where_frames_are_missing():
    per_frame = np.arange(10, dtype=float)[:, None]  # frame f acquired at f / 20 s
    ends = np.array([-0.01, 0.0, 0.12, 0.26, 0.4999, 0.5, 2.0])
    out = aus_window_features(per_frame, 20.0, ends, length_s=0.1)[:, 0]
    assert np.isnan(out[0])
    assert out[1] == 0.0
    assert out[2] == pytest.approx(1.5)  # frames 1 (0.05 s) and 2 (0.10 s)
    assert out[3] == pytest.approx(4.5)  # frames 4, 5
    assert out[4] == pytest.approx(8.5)  # frames 8, 9: nothing after 0.4999 s is used
    assert np.isnan(out[5]) and np.isnan(out[6])  # past the last frame's interval


def _walking_events(cycles=4, period=1.0):
    times, sides, kinds = [], [], []
    for c in range(cycles):
        t0 = c * period
        for offset, side, kind in [(0.0, 0, 0), (0.12, 1, 1), (0.5, 1, 0), (0.62, 0, 1)]:
            times.append(t0 + offset * period)
            sides.append(side)
            kinds.append(kind)
    return np.array(times), np.array(sides), np.array(kinds)


def test_phase_labels_follow_the_documented_event_definition():
    times, sides, kinds = _walking_events()
    t = np.arange(0, 4, 0.01)
    labels = label_gait_phases(t, times, sides, kinds, side=0)
    first = labels[(t >= 0) & (t < 1)]
    assert (first[:12] == 0).all()  # loading response 0-12 %
    assert (first[12:31] == 1).all()  # mid stance to the midpoint (31 %)
    assert (first[31:50] == 2).all()  # terminal stance
    assert (first[50:62] == 3).all()  # pre-swing
    assert (first[62:] == 4).all()  # swing
    assert (labels[t >= 3] == UNLABELLED).all()  # after the last complete stride
    assert len(PHASE_NAMES) == 5


def test_phase_labels_skip_strides_with_missing_events():
    times, sides, kinds = _walking_events()
    drop = (times > 1.0) & (times < 2.0) & (kinds == 1) & (sides == 0)  # left foot off, stride 2
    t = np.arange(0, 4, 0.01)
    labels = label_gait_phases(t, times[~drop], sides[~drop], kinds[~drop], side=0)
    assert (labels[(t >= 1) & (t < 2)] == UNLABELLED).all()
    assert (labels[(t >= 2) & (t < 3)] >= 0).all()


def test_right_side_phases_are_half_a_cycle_later():
    times, sides, kinds = _walking_events()
    t = np.arange(0, 4, 0.01)
    right = label_gait_phases(t, times, sides, kinds, side=1)
    assert right[np.searchsorted(t, 0.55)] == 0 and right[np.searchsorted(t, 1.3)] == 4


def test_regression_metrics_known_values():
    truth = np.column_stack([np.linspace(0, 10, 11)] * 3)
    metrics = regression_metrics(truth, truth + 1.0)
    assert metrics["rmse_deg_hip"] == pytest.approx(1.0)
    assert metrics["nrmse_pct_knee"] == pytest.approx(10.0)
    assert metrics["r2_ankle"] == pytest.approx(1 - 11 / 110)


def test_classification_metrics_known_values():
    truth = np.array([0, 0, 1, 1, 4, 4])
    metrics = classification_metrics(truth, np.array([0, 1, 1, 1, 4, 4]))
    assert metrics["accuracy"] == pytest.approx(5 / 6)
    assert metrics["confusion"].shape == (5, 5) and metrics["confusion"][0, 1] == 1
    assert metrics["macro_f1"] == pytest.approx(np.mean([2 / 3, 0.8, 1.0]))


def test_model_registry_covers_the_required_families():
    assert {"ridge", "random_forest", "kernel_ridge", "mlp", "tcn", "lstm", "transformer"} <= set(
        model_names("regression")
    )
    assert {"lda", "svm", "random_forest", "knn", "mlp", "tcn"} <= set(
        model_names("classification")
    )
    with pytest.raises(ValueError, match="unknown regression model"):
        build_model("regression", "nope")


def test_tabular_model_skips_nan_rows_and_predicts_nothing_there():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]])
    x[5] = np.nan
    y[7] = np.nan
    model = build_model("regression", "ridge").fit([x[:100], x[100:]], [y[:100], y[100:]])
    pred = model.predict([x])[0]
    assert np.isnan(pred[5]).all() and np.isfinite(pred[7]).all()
    assert np.sqrt(np.nanmean((pred - np.nan_to_num(y)) ** 2, axis=0))[[0, 1, 2]][0] < 0.1


@pytest.mark.parametrize("architecture", ["tcn", "lstm", "transformer"])
def test_sequence_models_use_past_context_within_a_trial(architecture):
    # The target is the feature three rows earlier: only a model with context can learn it,
    # and context must restart at each trial (the first rows of a trial have no past).
    rng = np.random.default_rng(1)
    trials_x = [rng.normal(size=(300, 2)) for _ in range(4)]
    trials_y = [np.vstack([np.zeros((3, 1)), x[:-3, :1]]) for x in trials_x]
    model = build_model(
        "regression",
        architecture,
        params={"context": 6, "epochs": 40, "hidden": 16, "layers": 1, "learning_rate": 1e-2},
    )
    model.fit(trials_x[:3], trials_y[:3])
    pred = model.predict([trials_x[3]])[0]
    rmse = np.sqrt(np.mean((pred[3:] - trials_y[3][3:]) ** 2))
    assert rmse < 0.5 * np.std(trials_y[3])
