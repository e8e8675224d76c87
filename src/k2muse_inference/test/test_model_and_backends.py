"""Manifest checks and the real backends on a model folder written by k2muse_learning."""

import importlib.util
import json
import shutil

import numpy as np
import pytest
from k2muse_inference.backends import (
    BackendOptions,
    BackendUnavailable,
    ModelMismatch,
    OnnxRuntimeBackend,
    PyTorchBackend,
    TensorRTBackend,
    select_backend,
)
from k2muse_inference.model import Expectations, ManifestMismatch, load_model_spec
from k2muse_learning.tcn_demo import gait_like_windows
from k2muse_model.model_folder import ArtifactError


def test_spec_follows_the_manifest(model_folder):
    spec = load_model_spec(model_folder, Expectations())
    assert (spec.sample_rate_hz, spec.window_length) == (100.0, 100)
    assert spec.inputs == ("hip_angle", "hip_velocity")
    assert spec.ensemble.mode_keys == ("LG_0", "AS_5", "DS_5")
    assert spec.synthetic_training_data
    subset = load_model_spec(model_folder, Expectations(mode_keys=("DS_5",)))
    assert subset.ensemble.mode_keys == ("DS_5",)


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (Expectations(sample_rate_hz=200.0), "sample rate 100 Hz, but the node is configured"),
        (Expectations(window_length=187), "window 100 samples, but the node is configured"),
        (Expectations(inputs=("hip_angle",)), "inputs \\['hip_angle', 'hip_velocity'\\], but"),
        (Expectations(mode_keys=("LG_0", "RA_9")), "mode_keys \\['RA_9'\\] are not in"),
    ],
)
def test_mismatch_with_the_configuration_refuses(model_folder, expected, message):
    with pytest.raises(ManifestMismatch, match=message):
        load_model_spec(model_folder, expected)


def _copy_with_manifest(model_folder, tmp_path, **changes):
    folder = tmp_path / "edited"
    shutil.copytree(model_folder, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_manifest_window_that_contradicts_the_onnx_files_refuses(model_folder, tmp_path):
    folder = _copy_with_manifest(model_folder, tmp_path, window_length=120)
    spec = load_model_spec(folder, Expectations())
    with pytest.raises(ModelMismatch, match="input shape .*manifest says \\(batch, 2, 120\\)"):
        select_backend("onnxruntime", spec.ensemble, BackendOptions(), order=["onnxruntime"])


def test_unknown_input_channel_refuses(model_folder, tmp_path):
    inputs = [{"name": "hip_angle", "unit": "deg"}, {"name": "hip_velocity", "unit": "rad/s"}]
    folder = _copy_with_manifest(model_folder, tmp_path, inputs=inputs)
    with pytest.raises(ArtifactError, match="inputs must list distinct known channels"):
        load_model_spec(folder, Expectations())


def test_corrupt_model_file_refuses(model_folder, tmp_path):
    folder = tmp_path / "corrupt"
    shutil.copytree(model_folder, folder)
    with open(folder / "onnx_sim" / "LG_0.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        load_model_spec(folder, Expectations())


@pytest.fixture(scope="module")
def spec(model_folder):
    return load_model_spec(model_folder, Expectations())


def test_onnxruntime_and_pytorch_backends_agree(spec):
    windows = gait_like_windows(8, 100)
    onnx = OnnxRuntimeBackend(spec.ensemble, BackendOptions()).predict(windows)
    torch_out = PyTorchBackend(spec.ensemble, BackendOptions()).predict(windows)
    assert onnx.shape == torch_out.shape == (3, 8)
    np.testing.assert_allclose(onnx, torch_out, atol=1e-4)
    assert np.ptp(onnx) > 0.01  # the models really respond to the windows


def test_onnx_variant_follows_the_option(spec):
    simplified = OnnxRuntimeBackend(spec.ensemble, BackendOptions())
    plain = OnnxRuntimeBackend(spec.ensemble, BackendOptions(onnx_prefer_simplified=False))
    assert [p.parent.name for p in simplified.files] == ["onnx_sim"] * 3
    assert [p.parent.name for p in plain.files] == ["onnx"] * 3


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="TensorRT is installed: the fallback path is not taken here")
def test_requested_tensorrt_falls_back_to_onnxruntime(spec):
    with pytest.raises(BackendUnavailable, match="tensorrt Python module is not installed"):
        TensorRTBackend(spec.ensemble, BackendOptions())
    selection = select_backend("tensorrt", spec.ensemble, BackendOptions())
    assert selection.backend.name == "onnxruntime_streaming"
    assert "skipped tensorrt: the tensorrt Python module is not installed" in (
        selection.describe("tensorrt"))


@pytest.mark.gpu
def test_tensorrt_backend_matches_onnxruntime(tmp_path):
    from k2muse_model.tensorrt_runner import tensorrt_available

    if not tensorrt_available():
        pytest.skip("needs tensorrt, cuda-python and a CUDA device")
    from k2muse_learning.artifacts import TrainedModel, write_model_folder
    from k2muse_model.tcn import TCNConfig, build_tcn

    model = build_tcn(TCNConfig(channels=16, levels=4, dropout=0.0)).eval()
    folder = write_model_folder(
        tmp_path / "trt", [TrainedModel("LG_0", model)], window_length=100,
        sample_rate_hz=100.0, input_names=["hip_angle", "hip_velocity"],
        synthetic_training_data=True, tensorrt_precision="fp16",
    )
    ensemble = load_model_spec(folder, Expectations()).ensemble
    selection = select_backend("auto", ensemble, BackendOptions())
    assert selection.backend.name == "tensorrt"
    windows = gait_like_windows(4, 100)
    onnx = OnnxRuntimeBackend(ensemble, BackendOptions()).predict(windows)
    np.testing.assert_allclose(selection.backend.predict(windows), onnx, atol=5e-2)  # fp16
