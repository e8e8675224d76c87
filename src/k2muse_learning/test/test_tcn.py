import numpy as np
import pytest
import torch
from k2muse_model.tcn import TCNConfig, build_tcn, without_weight_norm

torch.set_num_threads(1)


def small_model(**overrides):
    torch.manual_seed(0)
    config = {"input_channels": 2, "channels": 8, "levels": 3, "kernel_size": 3,
              "dropout": 0.0, **overrides}
    return build_tcn(config).eval()


def test_receptive_field_matches_measured_dependency():
    model = small_model()
    assert model.receptive_field == 1 + 2 * 2 * (2**3 - 1)
    x = torch.randn(1, 2, 64, requires_grad=True)
    model(x).sum().backward()
    touched = np.nonzero(x.grad.abs().sum(dim=1)[0].numpy())[0]
    assert 64 - touched.min() == model.receptive_field


def test_output_is_causal():
    model = small_model()
    x = torch.randn(2, 2, 50)
    changed = x.clone()
    changed[:, :, 30:] += 5.0
    before = model.forward_sequence(x)
    after = model.forward_sequence(changed)
    torch.testing.assert_close(before[:, :30], after[:, :30])
    assert not torch.allclose(before[:, 30:], after[:, 30:])


def test_sequence_output_equals_last_step_of_each_window():
    model = small_model()
    window = 40
    x = torch.randn(1, 2, 100)
    sequence = model.forward_sequence(x)[0]
    for end in (window - 1, 60, 99):
        last = model(x[:, :, end - window + 1:end + 1])[0, 0]
        torch.testing.assert_close(last, sequence[end], rtol=1e-5, atol=1e-6)


def test_normalisation_buffers_apply_to_raw_inputs():
    model = small_model()
    x = torch.randn(3, 2, 40)
    reference = model(x)
    mean, std = np.array([0.2, -1.0]), np.array([0.5, 3.0])
    model.set_normalisation(mean, std, output_mean=0.3, output_std=2.0)
    raw = x * torch.tensor(std, dtype=torch.float32)[None, :, None] \
        + torch.tensor(mean, dtype=torch.float32)[None, :, None]
    torch.testing.assert_close(model(raw), reference * 2.0 + 0.3, rtol=1e-4, atol=1e-5)
    assert "input_mean" in model.state_dict() and "output_std" in model.state_dict()


@pytest.mark.parametrize("bad", [[0.0, 1.0], [np.nan, 1.0]])
def test_normalisation_refuses_degenerate_spread(bad):
    with pytest.raises(ValueError, match="spread"):
        small_model().set_normalisation([0.0, 0.0], bad, 0.0, 1.0)


def test_config_round_trip_and_validation():
    config = TCNConfig(channels=12, levels=2, kernel_size=5, weight_norm=False)
    data = config.to_dict()
    assert data["kind"] == "tcn" and data["receptive_field"] == config.receptive_field
    assert TCNConfig.from_dict(data) == config
    with pytest.raises(ValueError, match="unknown"):
        TCNConfig.from_dict({**data, "hidden": 3})
    with pytest.raises(ValueError, match="kernel_size"):
        TCNConfig(kernel_size=1)
    with pytest.raises(ValueError, match="not 'tcn'"):
        TCNConfig.from_dict({"kind": "lstm"})


def test_weight_norm_folding_keeps_outputs():
    model = small_model(weight_norm=True)
    folded = without_weight_norm(model)
    x = torch.randn(4, 2, 30)
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-6)
    assert not any("parametrizations" in k for k in folded.state_dict())
