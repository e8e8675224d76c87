"""Shared test data: a real model folder and a generated, processed trial."""

import numpy as np
import pytest
from k2muse_dataset.process import process_release
from k2muse_dataset.synth import generate_release
from k2muse_dataset.trial_h5 import iter_trial_files, read_trial_h5
from k2muse_learning.tcn_demo import write_demo_model_folder

MODE_KEYS = ("LG_0", "AS_5", "DS_5")


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory):
    """Three random-weight TCNs (window 100 at 100 Hz) written by k2muse_learning's own API."""
    return write_demo_model_folder(tmp_path_factory.mktemp("model") / "demo", mode_keys=MODE_KEYS)


@pytest.fixture(scope="session")
def trial_hip_angles(tmp_path_factory):
    """(time_s, (N, 2) sagittal hip angle rad, left/right) of a generated, processed trial."""
    root = tmp_path_factory.mktemp("k2muse")
    generate_release(root / "release", participants=("P01",), mode_keys=("LG_0",), trials=1,
                     duration_s=8.0, processed=False)
    process_release(root / "release", root / "out", jobs=1, write_mat=False)
    trial = read_trial_h5(next(iter_trial_files(root / "out")), load_emg=False, load_aus=False)
    angles = trial.angles_rad["hip"][:, :, 0]
    assert np.isfinite(angles).all() and trial.sample_rate_hz == 100.0
    return trial.time_s, angles


@pytest.fixture(scope="session")
def offline_reference(model_folder):
    """Offline ONNX Runtime ensemble mean for every full window of a model-rate angle series.

    Built independently of the node's code: plain slicing, the manifest's velocity definition
    (backward difference times rate) and k2muse_learning's ONNX Runtime runner on onnx/ files.
    Returns estimates for windows ending at samples window_length .. N-1.
    """
    from k2muse_learning.artifacts import load_manifest, model_file
    from k2muse_learning.export import OnnxRuntimeRunner, predict

    manifest = load_manifest(model_folder)
    window, rate = manifest["window_length"], manifest["sample_rate_hz"]
    runners = [OnnxRuntimeRunner(model_file(model_folder, manifest, key, "onnx"))
               for key in MODE_KEYS]

    def reference(angles):
        angles = np.asarray(angles, dtype=np.float64)
        ends = np.arange(window, len(angles))
        index = ends[:, None] + np.arange(-window + 1, 1)[None, :]
        velocity = (angles[index] - angles[index - 1]) * rate
        windows = np.stack([angles[index], velocity], axis=1).astype(np.float32)
        return np.mean([predict(runner, windows) for runner in runners], axis=0)

    return reference
