"""Ensemble averaging with the checks that keep a NaN or absurd moment from ever leaving."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from k2muse_inference.backends import Backend, StreamingBackend


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
    means = np.where(finite, outputs, 0.0).sum(axis=0) / len(outputs)
    valid = finite & (np.abs(means) <= max_abs_moment_nm_per_kg)
    return np.where(valid, means, 0.0), valid


class StreamCache:
    """Model histories of recent windows, found again by the window that continues them.

    A window continues a stream when its first W-1 samples are, bit for bit, the previous
    window's last W-1: then the model input is that window shifted by one sample, and since
    the receptive field fits in the window, stepping the carried history by the newest sample
    gives the windowed estimate. Anything else (a gap, a restart, a skipped sample, another
    leg or grid phase without its own stream) finds nothing and is primed from its window.
    Two legs at k times the model rate keep 2k streams alive (one per grid phase), so the
    capacity (~57 kB of states each for five default models) allows inputs up to 16x the rate.
    """

    def __init__(self, capacity: int = 32):
        self.capacity = capacity
        self._states: OrderedDict[bytes, list[np.ndarray]] = OrderedDict()

    def find(self, window: np.ndarray) -> list[np.ndarray] | None:
        """States of the stream this (channel, time) window continues, or None."""
        return self._states.get(window[:, :-1].tobytes())

    def keep(self, window: np.ndarray, states: list[np.ndarray]) -> None:
        """Remember the states after ``window``; the oldest stream goes beyond capacity."""
        key = window[:, 1:].tobytes()
        self._states[key] = states
        self._states.move_to_end(key)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)


class Ensemble:
    """Runs the backend on a batch of windows and averages the per-mode outputs.

    With a streaming backend, a window that continues an earlier one costs one model step
    (``steps`` counts them); any other is primed from its whole window (``primes``).
    """

    def __init__(self, backend: Backend, max_abs_moment_nm_per_kg: float = 5.0,
                 stream_capacity: int = 32):
        self.backend = backend
        self.max_abs_moment_nm_per_kg = max_abs_moment_nm_per_kg
        streaming = callable(getattr(backend, "step", None))
        self._streams = StreamCache(stream_capacity) if streaming else None
        self.steps = 0
        self.primes = 0

    def __call__(self, batch: np.ndarray) -> EnsembleOutput:
        """Average estimate for each (channel, time) window of ``batch``; latency is wall time."""
        start = time.perf_counter()
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._streams is None:
            outputs = self.backend.predict(batch)
        else:
            outputs = self._stream(self.backend, self._streams, batch)
        latency_s = time.perf_counter() - start
        moments, valid = average_members(outputs, self.max_abs_moment_nm_per_kg)
        return EnsembleOutput(moments, valid, latency_s)

    def _stream(self, backend: StreamingBackend, streams: StreamCache,
                batch: np.ndarray) -> np.ndarray:
        found = [streams.find(window) for window in batch]
        stepped = [row for row, states in enumerate(found) if states is not None]
        primed = [row for row, states in enumerate(found) if states is None]
        outputs = None
        for rows, run in ((stepped, self._step_rows), (primed, self._prime_rows)):
            if not rows:
                continue
            moments, states = run(backend, batch, rows, found)
            self._keep(streams, batch, rows, states)
            if len(rows) == len(batch):  # every row of one kind (the steady state): no scatter
                return moments
            if outputs is None:
                outputs = np.empty((moments.shape[0], len(batch)))
            outputs[:, rows] = moments
        return outputs

    def _step_rows(self, backend: StreamingBackend, batch: np.ndarray, rows: list[int],
                   found: list) -> tuple[np.ndarray, list[np.ndarray]]:
        states = found[rows[0]] if len(rows) == 1 else [
            np.concatenate(layer) for layer in zip(*(found[r] for r in rows), strict=True)]
        self.steps += len(rows)
        whole = len(rows) == len(batch)  # no gather (a copy) when every row steps
        return backend.step(batch[:, :, -1:] if whole else batch[rows, :, -1:], states)

    def _prime_rows(self, backend: StreamingBackend, batch: np.ndarray, rows: list[int],
                    found: list) -> tuple[np.ndarray, list[np.ndarray]]:
        self.primes += len(rows)
        return backend.prime(batch if len(rows) == len(batch) else batch[rows])

    @staticmethod
    def _keep(streams: StreamCache, batch: np.ndarray, rows, states: list[np.ndarray]) -> None:
        """Remember each row's states under its window (a batch of one keeps them whole)."""
        if len(batch) == 1:
            streams.keep(batch[0], states)
            return
        for index, row in enumerate(rows):
            streams.keep(batch[row], [layer[index:index + 1] for layer in states])
