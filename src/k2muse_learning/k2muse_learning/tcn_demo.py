"""Small, untrained-but-plausible model folders for tests of readers (e.g. k2muse_inference).

The weights are random (seeded), the normalisation statistics are those of level walking,
so outputs have a realistic scale; metrics are absent and the manifest says
synthetic_training_data=true. Use real training (k2muse_learning.training) for anything else.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from k2muse_model.features import angular_velocity
from k2muse_model.tcn import TCNConfig, build_tcn

from k2muse_learning.artifacts import TrainedModel, write_model_folder

# Typical level-walking statistics: hip angle mean/std (rad), velocity (rad/s), moment N·m/kg.
WALKING_INPUT_MEAN = (0.15, 0.0)
WALKING_INPUT_STD = (0.3, 1.8)
WALKING_MOMENT_MEAN, WALKING_MOMENT_STD = 0.05, 0.45


def gait_like_windows(count: int, window_length: int = 100, sample_rate_hz: float = 100.0,
                      with_velocity: bool = True, seed: int = 0) -> np.ndarray:
    """Raw (count, channel, time) float32 windows of a sinusoid-like hip angle in rad."""
    rng = np.random.default_rng(seed)
    t = np.arange(window_length) / sample_rate_hz
    cadence_hz = rng.uniform(0.7, 1.1, (count, 1))
    phase = rng.uniform(0, 2 * np.pi, (count, 1))
    angle = 0.15 + 0.4 * np.sin(2 * np.pi * cadence_hz * t + phase) \
        + 0.08 * np.sin(4 * np.pi * cadence_hz * t + 2 * phase)
    channels = [angle]
    if with_velocity:
        velocity = angular_velocity(angle, sample_rate_hz, axis=1)
        channels.append(velocity)
    return np.stack(channels, axis=1).astype(np.float32)


def write_demo_model_folder(folder: str | os.PathLike, mode_keys: Sequence[str] = ("LG_0",),
                            window_length: int = 100, with_velocity: bool = True,
                            config: TCNConfig | None = None, seed: int = 0,
                            overwrite: bool = False) -> Path:
    """Write a complete, verified model folder of small random-weight TCNs."""
    input_names = ["hip_angle", "hip_velocity"] if with_velocity else ["hip_angle"]
    config = config or TCNConfig(input_channels=len(input_names), channels=16, levels=4,
                                 dropout=0.0)
    channels = len(input_names)
    trained = []
    for index, key in enumerate(mode_keys):
        torch.manual_seed(seed + index)
        model = build_tcn(config)
        model.set_normalisation(WALKING_INPUT_MEAN[:channels], WALKING_INPUT_STD[:channels],
                                WALKING_MOMENT_MEAN, WALKING_MOMENT_STD)
        trained.append(TrainedModel(key, model.eval()))
    windows = gait_like_windows(32, window_length, with_velocity=with_velocity, seed=seed)
    return write_model_folder(folder, trained, window_length=window_length,
                              sample_rate_hz=100.0, input_names=input_names,
                              synthetic_training_data=True, model_id="demo-random-tcn",
                              parity_windows=windows, overwrite=overwrite)
