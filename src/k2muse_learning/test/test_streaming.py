"""Fused streaming TCN: equal to the per-mode windowed models, in PyTorch and exported ONNX."""

import json

import numpy as np
import pytest
import torch
from k2muse_learning.export import TorchRunner, predict
from k2muse_learning.streaming import (
    FUSED_FILE,
    PARITY_TOLERANCE,
    FusedStreamingTCN,
    OnnxStreamingRunner,
    TorchStreamingRunner,
    export_fused_onnx,
    stream_sequence,
)
from k2muse_learning.tcn_demo import gait_like_windows, write_demo_model_folder
from k2muse_model.tcn import TCNConfig, build_tcn


def trained_like(config, count, seed=0):
    """Mode models with distinct, non-trivial weights and normalisation (not fresh inits)."""
    torch.manual_seed(seed)
    models = []
    for index in range(count):
        model = build_tcn(config)
        channels = config.input_channels
        model.set_normalisation(np.linspace(0.1, 0.3, channels) * (index + 1),
                                np.linspace(0.3, 1.8, channels), 0.05 * index, 0.4 + 0.1 * index)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(0.05 * torch.randn_like(parameter))
        models.append(model.eval())
    return models


def windowed_reference(models, sequence, window):
    """Per-model windowed estimates for every window of a (channel, time) sequence."""
    ends = np.arange(window, sequence.shape[1] + 1)
    windows = np.stack([sequence[:, end - window:end] for end in ends])
    return np.stack([predict(TorchRunner(m), windows) for m in models], axis=1)


@pytest.mark.parametrize("config", [
    TCNConfig(),  # default: weight norm, 1x1 residual projection on the first level
    TCNConfig(input_channels=2, channels=2, levels=3, kernel_size=2, weight_norm=False),
    TCNConfig(input_channels=1, channels=8, levels=2, kernel_size=3),
])
def test_fused_module_streams_like_the_windowed_models(config):
    models = trained_like(config, 3)
    window = config.receptive_field + 5
    sequence = gait_like_windows(1, 3 * window, with_velocity=config.input_channels == 2)[0]
    reference = windowed_reference(models, sequence, window)
    runner = TorchStreamingRunner(models)
    streamed = stream_sequence(runner.step, runner.prime, sequence, window)
    assert np.max(np.abs(streamed - reference)) <= PARITY_TOLERANCE
    assert np.ptp(reference) > 0.05  # the models really respond


def test_one_call_takes_many_samples_or_one(tmp_path):
    models = trained_like(TCNConfig(channels=16), 5, seed=1)
    sequence = gait_like_windows(1, 260)[0]
    reference = windowed_reference(models, sequence, 100)
    path = export_fused_onnx(models, tmp_path / "fused.onnx")
    runner = OnnxStreamingRunner(path)
    # prime on the first window, then feed the rest in chunks of 1, 7 and 52 samples
    outputs, states = runner.prime(sequence[None, :, :100])
    np.testing.assert_allclose(outputs[0], reference[0], atol=PARITY_TOLERANCE)
    end = 100
    for chunk in (1, 7, 52):
        outputs, states = runner.step(sequence[None, :, end:end + chunk], states)
        end += chunk
        np.testing.assert_allclose(outputs[0], reference[end - 100], atol=PARITY_TOLERANCE)
    assert [s.shape for s in states] == [(1, s.channels, s.length)
                                         for s in FusedStreamingTCN(models).state_specs()]


def test_fused_refuses_mixed_architectures():
    with pytest.raises(ValueError, match="one architecture"):
        FusedStreamingTCN([build_tcn(TCNConfig()), build_tcn(TCNConfig(channels=8))])


def test_model_folder_carries_the_fused_graph_with_its_parity(tmp_path):
    folder = write_demo_model_folder(tmp_path / "m", mode_keys=("LG_0", "AS_5"))
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["fused_streaming"]
    assert entry["file"] == FUSED_FILE and entry["file"] in manifest["sha256"]
    assert entry["mode_keys"] == ["LG_0", "AS_5"]
    assert set(entry["parity_max_abs_error"]) == {"windowed", "streaming"}
    assert max(entry["parity_max_abs_error"].values()) <= PARITY_TOLERANCE
    runner = OnnxStreamingRunner(folder / entry["file"])
    assert runner.state_names == [s["input"] for s in entry["states"]]
