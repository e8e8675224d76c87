"""Ensemble averaging with the checks that keep a NaN or absurd moment from ever leaving."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from k2muse_inference.backends import Backend


@dataclass(frozen=True)
class EnsembleOutput:
    """Averaged moments (N·m/kg) per batch row, which rows are usable, and the call's wall time."""

    moments_nm_per_kg: np.ndarray  # (batch,), 0.0 where not valid
    valid: np.ndarray  # (batch,) bool
    latency_s: float


def average_members(outputs: np.ndarray, max_abs_moment_nm_per_kg: float) -> tuple[
    np.ndarray, np.ndarray
]:
    """Mean over models (axis 0) per batch row, with a validity flag per row.

    A row with any non-finite member, or whose mean is beyond the plausible range, is invalid
    and reads 0.0: one broken member means the average cannot be trusted.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    finite = np.isfinite(outputs).all(axis=0)
    means = np.where(finite, np.where(finite, outputs, 0.0).mean(axis=0), 0.0)
    valid = finite & (np.abs(means) <= max_abs_moment_nm_per_kg)
    return np.where(valid, means, 0.0), valid


class Ensemble:
    """Runs the backend on a batch of windows and averages the per-mode outputs."""

    def __init__(self, backend: Backend, max_abs_moment_nm_per_kg: float = 5.0):
        self.backend = backend
        self.max_abs_moment_nm_per_kg = max_abs_moment_nm_per_kg

    def __call__(self, batch: np.ndarray) -> EnsembleOutput:
        """Average estimate for each (channel, time) window of ``batch``; latency is wall time."""
        start = time.perf_counter()
        outputs = self.backend.predict(np.ascontiguousarray(batch, dtype=np.float32))
        latency_s = time.perf_counter() - start
        moments, valid = average_members(outputs, self.max_abs_moment_nm_per_kg)
        return EnsembleOutput(moments, valid, latency_s)
