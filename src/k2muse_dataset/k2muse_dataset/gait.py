"""Stride segmentation at heel strike, event quality control and time normalisation.

Mirrors the authors' MATLAB pipeline: a stride runs from one heel strike to the next heel strike
of the same side; strides are resampled to a fixed number of points (default 101, 0-100 %
of the gait cycle) and summarised by mean and SD. Implausible events are rejected and reported,
never silently kept: doubled heel strikes, strides far from the median stride time (a missing
event doubles a stride), strides without exactly one foot off of the same side, and strides
that touch a gap (a NaN sample, e.g. Nexus zeros or an artefact span) in a required signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .trial_h5 import EVENT_FOOT_OFF, EVENT_FOOT_STRIKE, SIDES

DEFAULT_POINTS = 101
DEFAULT_STRIDE_TOLERANCE = 0.3


@dataclass
class StrideSegmentation:
    """Accepted strides per side (start, end sample) and every issue found."""

    strides: dict[str, np.ndarray]
    issues: list[str] = field(default_factory=list)
    rejected: int = 0


def _gap_reason(required: Mapping[str, np.ndarray], side_index: int, start: int,
                end: int) -> str | None:
    """Names and sizes of the gaps of ``required`` signals inside samples [start, end]."""
    gaps = []
    for name, signal in required.items():
        missing = int(np.count_nonzero(~np.isfinite(signal[start:end + 1, side_index])))
        if missing:
            gaps.append(f"{name} ({missing} samples)")
        elif end >= signal.shape[0]:
            gaps.append(f"{name} (ends after the recording)")
    return f"gap in {', '.join(gaps)}" if gaps else None


def segment_strides(frames: np.ndarray, sides: np.ndarray, kinds: np.ndarray, rate_hz: float,
                    tolerance: float = DEFAULT_STRIDE_TOLERANCE,
                    required: Mapping[str, np.ndarray] | None = None) -> StrideSegmentation:
    """Cut strides at heel strikes per side and reject implausible ones.

    ``tolerance`` is the accepted relative deviation of a stride time from the side's median.
    ``required``: signals (N, 2 sides) a stride must have without gap (non-finite sample).
    """
    frames, sides, kinds = (np.asarray(a) for a in (frames, sides, kinds))
    result = StrideSegmentation({})
    if frames.size == 0:
        result.issues.append("no gait events")
    for side_index, side in enumerate(SIDES):
        mask = sides == side_index
        strikes = np.sort(frames[mask & (kinds == EVENT_FOOT_STRIKE)])
        offs = np.sort(frames[mask & (kinds == EVENT_FOOT_OFF)])
        accepted: list[tuple[int, int]] = []
        if strikes.size >= 2:
            median = float(np.median(np.diff(strikes)))
            keep = [int(strikes[0])]
            for frame in strikes[1:]:
                if frame - keep[-1] < 0.5 * median:
                    result.issues.append(f"{side}: doubled heel strike at "
                                         f"{frame / rate_hz:.2f} s dropped")
                else:
                    keep.append(int(frame))
            strikes = np.array(keep)
            durations = np.diff(strikes)
            median = float(np.median(durations)) if durations.size else 0.0
            for start, end in zip(strikes[:-1], strikes[1:], strict=True):
                n_offs = int(np.count_nonzero((offs > start) & (offs < end)))
                reason = None
                if abs((end - start) - median) > tolerance * median:
                    reason = (f"stride time {(end - start) / rate_hz:.2f} s vs median "
                              f"{median / rate_hz:.2f} s (missing or wrong event?)")
                elif n_offs != 1:
                    reason = f"{n_offs} foot-off events inside the stride"
                elif required:
                    reason = _gap_reason(required, side_index, int(start), int(end))
                if reason:
                    result.rejected += 1
                    result.issues.append(f"{side}: stride at {start / rate_hz:.2f} s rejected: "
                                         f"{reason}")
                else:
                    accepted.append((int(start), int(end)))
        elif frames.size:
            result.issues.append(f"{side}: fewer than two heel strikes, no stride")
        result.strides[side] = np.array(accepted, dtype=np.int64).reshape(-1, 2)
    return result


def normalise_strides(signal: np.ndarray, strides: np.ndarray,
                      n_points: int = DEFAULT_POINTS) -> np.ndarray:
    """Resample each stride of ``signal`` (N, ...) to ``n_points``: result (n_points, ..., S)."""
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    signal = np.asarray(signal, dtype=np.float64)
    strides = np.asarray(strides).reshape(-1, 2)
    # All strides at once: x (n_points, S) sample positions, interpolated between neighbours.
    x = np.linspace(strides[:, 0], strides[:, 1], n_points, axis=0)
    i0 = np.minimum(np.floor(x).astype(np.int64), strides[:, 1] - 1)
    w = (x - i0).reshape(*x.shape, *([1] * (signal.ndim - 1)))
    out = signal[i0] * (1.0 - w) + signal[i0 + 1] * w  # (n_points, S, ...)
    return np.moveaxis(out, 1, -1)


def mean_sd(normalised: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample SD over the last (stride) axis, ignoring NaN gaps."""
    if normalised.shape[-1] == 0:
        shape = normalised.shape[:-1]
        return np.full(shape, np.nan), np.full(shape, np.nan)
    # nanmean/nanstd copy and mask the array; without gaps the plain reductions are the same.
    gaps = np.isnan(normalised).any()
    mean = np.nanmean(normalised, axis=-1) if gaps else normalised.mean(axis=-1)
    sd = ((np.nanstd if gaps else np.std)(normalised, axis=-1, ddof=1)
          if normalised.shape[-1] > 1 else np.zeros_like(mean))
    return mean, sd
