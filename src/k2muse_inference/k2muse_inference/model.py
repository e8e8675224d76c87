"""What the node takes from a model folder's manifest, and the checks that refuse a mismatch.

The manifest (``docs/architecture.md`` section 2) is read and verified (schema, paths,
sha256) by ``model_folder.verify_folder``, without torch; this module checks what the
node depends on - sample rate, window length, input channels, tensor layout - against what
the node can compute and what the deployment configuration pinned, and turns it into the
pieces the node runs on: a window geometry, a feature builder and the ensemble's files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from k2muse_model.features import angular_velocity
from k2muse_model.model_folder import verify_folder

from k2muse_inference.backends import EnsembleFiles

# Input channels this node can compute from a hip angle stream, with their units.
SUPPORTED_INPUTS = {"hip_angle": "rad", "hip_velocity": "rad/s"}


class ManifestMismatch(ValueError):
    """The model folder does not fit this node or its configuration; the node must not start."""


@dataclass(frozen=True)
class Expectations:
    """Values the deployment pins; 0 or empty means "take the manifest's"."""

    sample_rate_hz: float = 0.0
    window_length: int = 0
    inputs: tuple[str, ...] = ()
    mode_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """The checked manifest facts the node runs on."""

    model_id: str
    sample_rate_hz: float
    window_length: int
    inputs: tuple[str, ...]
    synthetic_training_data: bool
    ensemble: EnsembleFiles


def load_model_spec(folder: str | Path, expected: Expectations) -> ModelSpec:
    """Verify a model folder (``verify_folder``: schema, sha256) and check it fits the node.

    Raises ``ArtifactError`` for a broken folder and ``ManifestMismatch`` for one that is
    intact but not what this node or its configuration expects.
    """
    folder = Path(folder)
    return model_spec(folder, verify_folder(folder), expected)


def model_spec(folder: Path, manifest: Mapping[str, Any], expected: Expectations) -> ModelSpec:
    """Check a verified manifest against the node's abilities and ``expected``."""
    where = f"{folder}/manifest.json"
    rate = float(manifest["sample_rate_hz"])
    window = int(manifest["window_length"])
    if expected.sample_rate_hz and not math.isclose(rate, expected.sample_rate_hz, rel_tol=1e-9):
        raise ManifestMismatch(
            f"{where}: model sample rate {rate:g} Hz, but the node is configured for "
            f"{expected.sample_rate_hz:g} Hz (parameter expected_sample_rate_hz)"
        )
    if expected.window_length and window != expected.window_length:
        raise ManifestMismatch(
            f"{where}: model window {window} samples, but the node is configured for "
            f"{expected.window_length} (parameter expected_window_length)"
        )
    if window < 2:
        raise ManifestMismatch(f"{where}: window_length {window} is too short to estimate from")

    inputs = tuple(_input_names(manifest["inputs"], where))
    if expected.inputs and inputs != tuple(expected.inputs):
        raise ManifestMismatch(
            f"{where}: model inputs {list(inputs)}, but the node is configured for "
            f"{list(expected.inputs)} (parameter expected_inputs)"
        )

    tensor = manifest["input_tensor"]
    layout = str(tensor.get("layout", "")).replace(" ", "")
    if layout != "batch,channel,time" or tensor.get("dtype") != "float32":
        raise ManifestMismatch(
            f"{where}: input tensor layout {layout!r} dtype {tensor.get('dtype')!r}; this node "
            "feeds 'batch,channel,time' float32"
        )

    available = [str(m["mode_key"]) for m in manifest["models"]]
    mode_keys = tuple(expected.mode_keys) or tuple(available)
    missing = sorted(set(mode_keys) - set(available))
    if missing:
        raise ManifestMismatch(
            f"{where}: mode_keys {missing} are not in the ensemble {available} (parameter "
            "mode_keys)"
        )

    return ModelSpec(
        model_id=str(manifest.get("model_id", folder.name)),
        sample_rate_hz=rate,
        window_length=window,
        inputs=inputs,
        synthetic_training_data=bool(manifest.get("synthetic_training_data", False)),
        ensemble=EnsembleFiles(
            folder=folder,
            manifest=dict(manifest),
            mode_keys=mode_keys,
            input_name=str(tensor.get("name", "")),
            channels=len(inputs),
            window_length=window,
        ),
    )


def _input_names(inputs: Sequence[Mapping[str, Any]], where: str) -> list[str]:
    names = []
    for entry in inputs:
        name, unit = entry.get("name"), entry.get("unit")
        if name not in SUPPORTED_INPUTS:
            raise ManifestMismatch(
                f"{where}: model input {name!r} cannot be computed from joint states "
                f"(supported: {sorted(SUPPORTED_INPUTS)})"
            )
        if unit != SUPPORTED_INPUTS[name]:
            raise ManifestMismatch(
                f"{where}: model input {name!r} in {unit!r}, this node provides "
                f"{SUPPORTED_INPUTS[name]!r}"
            )
        names.append(name)
    if not names:
        raise ManifestMismatch(f"{where}: the model declares no inputs")
    return names


def _hip_angle(angles_rad: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    return angles_rad[1:]


def _hip_velocity(angles_rad: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    # The training definition; the window's leading extra sample is only its predecessor.
    return angular_velocity(angles_rad, sample_rate_hz)[1:]


_CHANNEL_FUNCTIONS = {"hip_angle": _hip_angle, "hip_velocity": _hip_velocity}


class FeatureBuilder:
    """Turns a resampled hip-angle window (rad) into the model's (channel, time) input."""

    def __init__(self, inputs: Sequence[str], sample_rate_hz: float):
        self.inputs = tuple(inputs)
        self.sample_rate_hz = sample_rate_hz
        self._functions = [_CHANNEL_FUNCTIONS[name] for name in self.inputs]

    def __call__(self, angles_rad: np.ndarray) -> np.ndarray:
        """(W + 1,) angles, oldest first -> (channel, W) float32 in the manifest's order."""
        return np.stack([f(angles_rad, self.sample_rate_hz) for f in self._functions]).astype(
            np.float32
        )
