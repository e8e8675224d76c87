"""Training windows and the live estimator's windows hold identical features for one trial."""

import numpy as np
import pytest
from k2muse_dataset.process import process_release
from k2muse_dataset.synth import generate_release
from k2muse_dataset.trial_h5 import SIDES, iter_trial_files, read_trial_h5
from k2muse_inference.ensemble import Ensemble
from k2muse_inference.estimator import HipMomentEstimator
from k2muse_inference.model import FeatureBuilder
from k2muse_inference.window import NS_PER_S, WindowSpec
from k2muse_learning.windows import cut_windows, load_legs

NAMES = ["hip_angle", "hip_velocity"]
WINDOW = 100
T0_NS = 1_700_000_000 * NS_PER_S


class RecordingBackend:
    """Stands in for the models: keeps every batch the estimator sends, answers 0 N·m/kg."""

    name = "recording"

    def __init__(self):
        self.batches = []

    def predict(self, batch):
        self.batches.append(batch.copy())
        return np.zeros((1, len(batch)))


@pytest.fixture(scope="module")
def trial_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("k2muse")
    generate_release(root / "release", participants=["P01"], mode_keys=["LG_0"], speeds=[1.0],
                     trials=1, duration_s=8.0, seed=5, processed=False)
    process_release(root / "release", root / "out", jobs=1, write_mat=False)
    return next(iter_trial_files(root / "out"))


def live_features(angle_rad, sample_rate_hz):
    """Feed one leg's angles to the estimator as joint states; features per sample index."""
    backend = RecordingBackend()
    estimator = HipMomentEstimator(WindowSpec(sample_rate_hz, WINDOW),
                                   FeatureBuilder(NAMES, sample_rate_hz), Ensemble(backend))
    features = {}
    for index, angle in enumerate(angle_rad):
        stamp = T0_NS + round(index * NS_PER_S / sample_rate_hz)
        sent = len(backend.batches)
        estimator.on_sample(stamp, (float(angle), None), stamp)
        if len(backend.batches) > sent:
            features[index] = backend.batches[-1][0]
    return features


def test_training_and_live_windows_give_identical_features(trial_file):
    legs = load_legs([trial_file], NAMES)
    training = cut_windows(legs, WINDOW)
    trial = read_trial_h5(trial_file, load_emg=False, load_aus=False)
    live = {side: live_features(trial.angles_rad["hip"][:, index, 0], trial.sample_rate_hz)
            for index, side in enumerate(SIDES)}
    compared = 0
    for window, leg_index, end in zip(training.inputs, training.leg_index, training.end_index,
                                      strict=True):
        features = live[legs[leg_index].side].get(int(end))
        if features is None:  # the first sample of a series: live needs one predecessor more
            assert end < WINDOW
            continue
        np.testing.assert_array_equal(features, window)
        compared += 1
    assert compared > 0.9 * len(training) and compared > 500
    assert np.ptp(training.inputs[:, 1]) > 1.0  # the velocity channel really moves (rad/s)
