"""Causal temporal convolutional network (TCN) for hip-moment estimation.

Locuslab-style TCN as used by Molinaro et al.: residual blocks of two causal dilated Conv1d
(optionally weight-normalised) with ReLU and dropout, dilation 2**level, and a linear head on
the last time step. Input normalisation (and output scaling) live inside the module as buffers,
so an exported model takes raw SI inputs (rad, rad/s) and returns N·m/kg.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm as weight_norm_parametrization


@dataclass(frozen=True)
class TCNConfig:
    """Hyper-parameters that fully determine the torch module (stored in the manifest)."""

    input_channels: int = 2
    channels: int = 32
    levels: int = 4
    kernel_size: int = 4  # with 4 levels: receptive field 91 samples, fits a 100-sample window
    dropout: float = 0.1
    weight_norm: bool = True

    def __post_init__(self) -> None:
        checks = {
            "input_channels": self.input_channels >= 1,
            "channels": self.channels >= 1,
            "levels": self.levels >= 1,
            "kernel_size": self.kernel_size >= 2,
            "dropout": 0.0 <= self.dropout < 1.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid TCN config value(s) {bad}: {self}")

    @property
    def receptive_field(self) -> int:
        """Number of past samples (including the current one) that reach the output."""
        return 1 + 2 * (self.kernel_size - 1) * (2**self.levels - 1)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, tagged with kind='tcn' and the receptive field."""
        return {"kind": "tcn", **asdict(self), "receptive_field": self.receptive_field}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> TCNConfig:
        """Build from a manifest/YAML dict; derived or descriptive keys are ignored."""
        kind = config.get("kind", "tcn")
        if kind != "tcn":
            raise ValueError(f"architecture kind {kind!r} is not 'tcn'")
        known = {f.name for f in fields(cls)}
        unknown = set(config) - known - {"kind", "receptive_field"}
        if unknown:
            raise ValueError(f"unknown TCN config key(s): {sorted(unknown)}")
        return cls(**{k: v for k, v in config.items() if k in known})


class CausalConv1d(nn.Module):
    """Dilated Conv1d padded on the left only, so output t never sees inputs after t."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int, norm: bool):
        super().__init__()
        self.left_pad = (kernel_size - 1) * dilation
        conv = nn.Conv1d(in_ch, out_ch, kernel_size, dilation=dilation)
        nn.init.normal_(conv.weight, 0.0, 0.01 if norm else 1.0 / np.sqrt(in_ch * kernel_size))
        self.conv = weight_norm_parametrization(conv) if norm else conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_ch, time) -> (batch, out_ch, time), same length."""
        return self.conv(F.pad(x, (self.left_pad, 0)))


class TemporalBlock(nn.Module):
    """Two causal convolutions with ReLU and dropout, plus a (1x1-projected) residual path."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, dilation: int,
                 dropout: float, norm: bool):
        super().__init__()
        self.body = nn.Sequential(
            CausalConv1d(in_ch, out_ch, kernel_size, dilation, norm), nn.ReLU(),
            nn.Dropout(dropout),
            CausalConv1d(out_ch, out_ch, kernel_size, dilation, norm), nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.residual = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in_ch, time) -> (batch, out_ch, time)."""
        return F.relu(self.body(x) + self.residual(x))


class HipMomentTCN(nn.Module):
    """Window of raw hip signals (batch, channel, time) -> hip moment N·m/kg (batch, 1)."""

    def __init__(self, config: TCNConfig):
        super().__init__()
        self.config = config
        blocks = []
        in_ch = config.input_channels
        for level in range(config.levels):
            blocks.append(TemporalBlock(in_ch, config.channels, config.kernel_size, 2**level,
                                        config.dropout, config.weight_norm))
            in_ch = config.channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(config.channels, 1)
        self.register_buffer("input_mean", torch.zeros(config.input_channels))
        self.register_buffer("input_std", torch.ones(config.input_channels))
        self.register_buffer("output_mean", torch.zeros(1))
        self.register_buffer("output_std", torch.ones(1))

    @property
    def receptive_field(self) -> int:
        """Receptive field in samples (see TCNConfig.receptive_field)."""
        return self.config.receptive_field

    def set_normalisation(self, input_mean: np.ndarray, input_std: np.ndarray,
                          output_mean: float, output_std: float) -> None:
        """Store training-set statistics; a zero or non-finite spread is refused."""
        in_std = np.asarray(input_std, dtype=np.float32)
        values = np.concatenate([np.asarray(input_mean, np.float32).ravel(), in_std.ravel(),
                                 [output_mean, output_std]])
        if not np.all(np.isfinite(values)) or np.any(in_std <= 0) or output_std <= 0:
            raise ValueError(f"normalisation statistics must be finite with spread > 0: {values}")
        self.input_mean.copy_(torch.as_tensor(np.asarray(input_mean, np.float32)))
        self.input_std.copy_(torch.as_tensor(in_std))
        self.output_mean.fill_(float(output_mean))
        self.output_std.fill_(float(output_std))

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.input_mean[None, :, None]) / self.input_std[None, :, None]
        return self.blocks(x)

    def _scale_output(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.output_std + self.output_mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Estimate at the window's last sample: (batch, channel, time) -> (batch, 1)."""
        return self._scale_output(self.head(self._features(x)[:, :, -1]))

    def forward_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Estimate at every sample: (batch, channel, time) -> (batch, time).

        Output t equals forward() on the window ending at t once t + 1 >= receptive field;
        training uses it to fit many consecutive targets per window at the cost of one pass.
        """
        features = self._features(x).transpose(1, 2)
        return self._scale_output(self.head(features)).squeeze(-1)


def build_tcn(config: TCNConfig | Mapping[str, Any]) -> HipMomentTCN:
    """Build the torch module from a TCNConfig or its manifest/YAML dict."""
    if not isinstance(config, TCNConfig):
        config = TCNConfig.from_dict(config)
    return HipMomentTCN(config)


def without_weight_norm(model: HipMomentTCN) -> HipMomentTCN:
    """Return an eval-mode copy with weight norm folded into plain weights (for export)."""
    folded = build_tcn(model.config)
    folded.load_state_dict(model.state_dict())
    for module in folded.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return folded.eval()
