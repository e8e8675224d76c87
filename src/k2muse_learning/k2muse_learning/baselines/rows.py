"""Which rows of a trial can be fitted, predicted and scored."""

from __future__ import annotations

import numpy as np


def valid_target_rows(targets: np.ndarray, task: str) -> np.ndarray:
    """Rows whose target is usable: finite angles, or a labelled phase."""
    if task == "regression":
        return np.all(np.isfinite(targets.reshape(len(targets), -1)), axis=1)
    return targets >= 0


def finite_rows(features: np.ndarray) -> np.ndarray:
    """Rows with every feature finite."""
    return np.all(np.isfinite(features), axis=1)


def empty_prediction(rows: int, target_shape: tuple[int, ...], task: str) -> np.ndarray:
    """Prediction array meaning "no prediction": NaN angles or phase -1."""
    if task == "regression":
        return np.full((rows, *target_shape), np.nan)
    return np.full(rows, -1, dtype=np.int64)
