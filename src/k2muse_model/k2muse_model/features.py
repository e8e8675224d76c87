"""Model input channels derived from joint angles, defined once for training and live use.

The manifest's ``hip_velocity`` input is this module's ``angular_velocity`` of ``hip_angle``:
a backward difference (rad/s), the causal estimate a live encoder stream can give at each new
sample. Training windows (``k2muse_learning.windows``), the live estimator
(``k2muse_inference.model.FeatureBuilder``) and the replay's velocity (``exo_control``) all
call it, so a model sees in deployment exactly the velocity it was trained on. It lives in
the model contract package, which both sides import and which needs nothing heavier than
numpy.
"""

from __future__ import annotations

import numpy as np


def angular_velocity(angle_rad: np.ndarray, sample_rate_hz: float | None = None, *,
                     time_s: np.ndarray | None = None, axis: int = 0) -> np.ndarray:
    """Backward-difference angular velocity in rad/s, same shape as ``angle_rad``.

    ``velocity[i] = (angle[i] - angle[i-1]) * sample_rate_hz``, or divided by
    ``time_s[i] - time_s[i-1]`` for irregular stamps; the first sample, which has no
    predecessor, repeats the second's value. Samples run along ``axis``; a NaN angle makes
    only its own and the next velocity NaN.
    """
    if (sample_rate_hz is None) == (time_s is None):
        raise ValueError("give exactly one of sample_rate_hz and time_s")
    angle = np.moveaxis(np.asarray(angle_rad, dtype=np.float64), axis, 0)
    if angle.shape[0] < 2:
        return np.moveaxis(np.full(angle.shape, np.nan), 0, axis)
    step = np.diff(angle, axis=0)
    if time_s is None:
        velocity = step * float(sample_rate_hz)
    else:
        time_s = np.asarray(time_s, dtype=np.float64)
        if time_s.shape != angle.shape[:1]:
            raise ValueError(f"time_s has shape {time_s.shape}, the angles {angle.shape[0]} "
                             "samples")
        velocity = step / np.diff(time_s).reshape(-1, *[1] * (angle.ndim - 1))
    return np.moveaxis(np.concatenate([velocity[:1], velocity]), 0, axis)
