"""Fused, streaming form of a TCN ensemble: every mode model in one graph, one sample per call.

The windowed model recomputes a whole window for each new sample. Because the network is
causal, the estimate at the newest sample only needs, per convolution, the last
``(kernel_size - 1) * dilation`` inputs of that convolution: those are carried between calls
as explicit state tensors, so one call with one new sample costs one time step. The same
graph takes any number of new samples: from zero states, a whole window gives exactly the
windowed estimate (the receptive field fits in the window, so the zero start never reaches
the newest output) and the states to continue from it ("priming").

The per-mode models share one architecture, so they are fused along the channel axis: the
first convolution of every model reads the same raw input (its input normalisation folded
into its weights), later convolutions are grouped (one group per model) and the heads form a
grouped 1x1 convolution with the output scaling folded in. One call returns every mode's
estimate, ``(batch, models)``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from k2muse_model.tcn import HipMomentTCN, TCNConfig, without_weight_norm
from torch import nn
from torch.nn import functional as F  # noqa: N812

from k2muse_learning.export import OPSET, atomic_write_bytes, cpu_session

INPUT_TENSOR = "hip_samples"
OUTPUT_TENSOR = "hip_moments"
STATE_INPUT = "state_in_{}"
STATE_OUTPUT = "state_out_{}"
FUSED_FILE = "onnx/ensemble_streaming.onnx"
PARITY_TOLERANCE = 1e-5


@dataclass(frozen=True)
class StateSpec:
    """One carried activation: (batch, channels, length) float32, zeros before the first call."""

    input_name: str
    output_name: str
    channels: int
    length: int

    def to_dict(self) -> dict:
        """JSON-ready form for the manifest."""
        return {"input": self.input_name, "output": self.output_name,
                "channels": self.channels, "length": self.length}


def state_specs(config: TCNConfig, models: int) -> list[StateSpec]:
    """Carried activations of a fused ensemble, in graph order (two per level)."""
    specs = []
    for level in range(config.levels):
        length = (config.kernel_size - 1) * 2**level
        first_in = config.input_channels if level == 0 else models * config.channels
        for channels in (first_in, models * config.channels):
            index = len(specs)
            specs.append(StateSpec(STATE_INPUT.format(index), STATE_OUTPUT.format(index),
                                   channels, length))
    return specs


def _stack_conv(convs: Sequence[nn.Conv1d], groups: int, dilation: int = 1) -> nn.Conv1d:
    """One Conv1d equal to the given convolutions side by side (grouped when groups > 1)."""
    first = convs[0]
    fused = nn.Conv1d(first.in_channels * groups, first.out_channels * len(convs),
                      first.kernel_size[0], dilation=dilation, groups=groups)
    with torch.no_grad():
        fused.weight.copy_(torch.cat([c.weight for c in convs]))
        fused.bias.copy_(torch.cat([c.bias for c in convs]))
    return fused


def _input_conv(convs: Sequence[nn.Conv1d], mean: torch.Tensor, std: torch.Tensor,
                dilation: int) -> nn.Conv1d:
    """Stacked first-level convolution on raw input, each model's (x - mean) / std folded in."""
    folded = []
    for conv, m, s in zip(convs, mean, std, strict=True):
        copy = nn.Conv1d(conv.in_channels, conv.out_channels, conv.kernel_size[0])
        with torch.no_grad():
            weight = conv.weight / s[None, :, None]
            copy.weight.copy_(weight)
            copy.bias.copy_(conv.bias - (weight * m[None, :, None]).sum(dim=(1, 2)))
        folded.append(copy)
    return _stack_conv(folded, groups=1, dilation=dilation)


def _residual_weights(models: Sequence[HipMomentTCN]) -> list[nn.Conv1d]:
    """First-level residual path of each model as a 1x1 convolution (identity made explicit)."""
    convs = []
    for model in models:
        residual = model.blocks[0].residual
        if isinstance(residual, nn.Conv1d):
            convs.append(residual)
            continue
        channels = model.config.input_channels
        identity = nn.Conv1d(channels, channels, 1)
        with torch.no_grad():
            identity.weight.copy_(torch.eye(channels)[:, :, None])
            identity.bias.zero_()
        convs.append(identity)
    return convs


class FusedStreamingTCN(nn.Module):
    """Every mode model in one module: (new samples, states) -> (estimates, new states).

    ``forward(x, *states)``: x raw (batch, channel, time >= 1); states as ``state_specs``
    (zeros to start). Returns the estimate at the last new sample for every model,
    (batch, models), followed by the updated states.
    """

    def __init__(self, models: Sequence[HipMomentTCN]):
        super().__init__()
        if not models:
            raise ValueError("need at least one model to fuse")
        configs = {m.config for m in models}
        if len(configs) != 1:
            raise ValueError("fused models must share one architecture")
        self.config = config = configs.pop()
        plain = [without_weight_norm(m) for m in models]
        count = len(plain)
        self.models = count
        self.pads = [(config.kernel_size - 1) * 2**level for level in range(config.levels)]
        means = [m.input_mean for m in plain]
        stds = [m.input_std for m in plain]
        first, second = [], []
        for level in range(config.levels):
            dilation = 2**level
            blocks = [m.blocks[level] for m in plain]
            if level == 0:
                first.append(_input_conv([b.body[0].conv for b in blocks], means, stds,
                                         dilation))
            else:
                first.append(_stack_conv([b.body[0].conv for b in blocks], count, dilation))
            second.append(_stack_conv([b.body[3].conv for b in blocks], count, dilation))
        self.first = nn.ModuleList(first)
        self.second = nn.ModuleList(second)
        self.residual = _input_conv(_residual_weights(plain), means, stds, dilation=1)
        head = nn.Conv1d(config.channels * count, count, 1, groups=count)
        with torch.no_grad():
            scale = torch.cat([m.output_std for m in plain])
            head.weight.copy_(torch.cat([m.head.weight for m in plain])[:, :, None]
                              * scale[:, None, None])
            head.bias.copy_(torch.cat([m.head.bias for m in plain]) * scale
                            + torch.cat([m.output_mean for m in plain]))
        self.head = head
        self.eval()

    def state_specs(self) -> list[StateSpec]:
        """The carried activations this module expects and returns."""
        return state_specs(self.config, self.models)

    def zero_states(self, batch: int) -> list[torch.Tensor]:
        """Initial states: zeros."""
        return [torch.zeros(batch, s.channels, s.length) for s in self.state_specs()]

    def forward(self, x: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(batch, channel, time) raw samples + states -> ((batch, models), *new states)."""
        new_states = []
        h = x
        for level, pad in enumerate(self.pads):
            a = torch.cat([states[2 * level], h], dim=2)
            y = F.relu(self.first[level](a))
            b = torch.cat([states[2 * level + 1], y], dim=2)
            y = F.relu(self.second[level](b))
            residual = self.residual(h) if level == 0 else h
            h = F.relu(y + residual)
            new_states += [a[:, :, -pad:], b[:, :, -pad:]]
        out = self.head(h[:, :, -1:])
        return (out[:, :, 0], *new_states)


def export_fused_onnx(models: Sequence[HipMomentTCN], path: str | os.PathLike) -> Path:
    """Export the fused streaming graph: dynamic batch and time, explicit state inputs/outputs."""
    path = Path(path)
    fused = FusedStreamingTCN(models)
    specs = fused.state_specs()
    example = (torch.zeros(1, fused.config.input_channels, 1), *fused.zero_states(1))
    dynamic = {INPUT_TENSOR: {0: "batch", 2: "time"}, OUTPUT_TENSOR: {0: "batch"}}
    for spec in specs:
        dynamic[spec.input_name] = {0: "batch"}
        dynamic[spec.output_name] = {0: "batch"}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        tmp_path = Path(tmp) / path.name
        torch.onnx.export(fused, example, str(tmp_path), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_TENSOR] + [s.input_name for s in specs],
                          output_names=[OUTPUT_TENSOR] + [s.output_name for s in specs],
                          dynamic_axes=dynamic, do_constant_folding=True)
        proto = onnx.load(str(tmp_path))
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def manifest_entry(models: Sequence[HipMomentTCN], mode_keys: Sequence[str],
                   parity: dict[str, float]) -> dict:
    """The manifest's ``fused_streaming`` entry (architecture.md section 2)."""
    fused_states = state_specs(models[0].config, len(models))
    return {"file": FUSED_FILE, "mode_keys": list(mode_keys),
            "input_tensor": {"name": INPUT_TENSOR, "layout": "batch,channel,time",
                             "dtype": "float32"},
            "output_tensor": {"name": OUTPUT_TENSOR, "unit": "N*m/kg",
                              "shape": "batch,models"},
            "states": [s.to_dict() for s in fused_states],
            "parity_max_abs_error": parity}


def stream_sequence(step, prime, sequence: np.ndarray, window_length: int) -> np.ndarray:
    """Estimates for every window of one (channel, time) sequence: prime once, then step.

    ``prime(windows) -> (outputs, states)`` and ``step(samples, states) -> (outputs, states)``
    are a runner's calls; returns (windows, models) for windows ending at
    window_length - 1 ... time - 1.
    """
    outputs, states = prime(sequence[None, :, :window_length])
    rows = [outputs[0]]
    for t in range(window_length, sequence.shape[1]):
        outputs, states = step(sequence[None, :, t:t + 1], states)
        rows.append(outputs[0])
    return np.stack(rows)


class TorchStreamingRunner:
    """The fused module as prime/step calls on numpy arrays (reference for parity)."""

    def __init__(self, models: Sequence[HipMomentTCN]):
        self.module = FusedStreamingTCN(models)

    def prime(self, windows: np.ndarray) -> tuple[np.ndarray, list]:
        """Windows (batch, channel, time) from zero states -> ((batch, models), states)."""
        return self.step(windows, self.module.zero_states(len(windows)))

    def step(self, samples: np.ndarray, states: list) -> tuple[np.ndarray, list]:
        """New samples (batch, channel, time) after ``states`` -> ((batch, models), states)."""
        with torch.inference_mode():
            out = self.module(torch.from_numpy(np.asarray(samples, np.float32)), *states)
        return out[0].numpy(), list(out[1:])


class OnnxStreamingRunner:
    """ONNX Runtime session on the fused graph as prime/step calls (used for parity checks)."""

    def __init__(self, path: str | os.PathLike, threads: int = 1):
        self.session = cpu_session(path, threads)
        inputs = self.session.get_inputs()[1:]
        self.state_names = [i.name for i in inputs]
        self.state_shapes = [tuple(i.shape[1:]) for i in inputs]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def prime(self, windows: np.ndarray) -> tuple[np.ndarray, list]:
        """Windows (batch, channel, time) from zero states -> ((batch, models), states)."""
        zeros = [np.zeros((len(windows), *shape), np.float32) for shape in self.state_shapes]
        return self.step(windows, zeros)

    def step(self, samples: np.ndarray, states: list) -> tuple[np.ndarray, list]:
        """New samples (batch, channel, time) after ``states`` -> ((batch, models), states)."""
        feed = {INPUT_TENSOR: np.ascontiguousarray(samples, np.float32),
                **dict(zip(self.state_names, states, strict=True))}
        out = self.session.run(self.output_names, feed)
        return out[0], out[1:]


def write_fused(folder: Path, models: Sequence[HipMomentTCN], mode_keys: Sequence[str],
                parity_windows: np.ndarray | None) -> dict:
    """Export the fused streaming graph into a model folder; return its manifest entry.

    With parity windows (N, C, T), two checks against each PyTorch mode model run on them and
    are recorded: ``windowed`` (the whole window from zero states) and ``streaming`` (the
    first half from zero states, then one sample per call to the end); either one beyond
    PARITY_TOLERANCE raises ExportError.
    """
    from k2muse_learning.export import ExportError, TorchRunner, predict

    export_fused_onnx(models, folder / FUSED_FILE)
    parity: dict[str, float] = {}
    if parity_windows is not None and len(parity_windows):
        windows = np.asarray(parity_windows, np.float32)
        reference = np.stack([predict(TorchRunner(m), windows) for m in models], axis=1)
        runner = OnnxStreamingRunner(folder / FUSED_FILE)
        windowed = np.concatenate([runner.prime(windows[i:i + 64])[0]
                                   for i in range(0, len(windows), 64)])
        half = windows.shape[2] // 2
        streamed = np.stack([stream_sequence(runner.step, runner.prime, w, half)[-1]
                             for w in windows[:8]])
        parity = {"windowed": float(np.max(np.abs(windowed - reference))),
                  "streaming": float(np.max(np.abs(streamed - reference[:8])))}
        worst = max(parity, key=parity.get)
        if not parity[worst] <= PARITY_TOLERANCE:
            raise ExportError(f"fused ensemble ({worst}) differs from PyTorch by "
                              f"{parity[worst]:.3g} N*m/kg (tolerance {PARITY_TOLERANCE:g})")
    return manifest_entry(models, mode_keys, parity)
