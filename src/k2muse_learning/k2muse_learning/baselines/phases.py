"""Gait-phase labels from the trial's foot-strike and foot-off events.

Five phases of one leg (Perry's sub-phases, bounded by events both legs produce):

==================  ======================================================================
loading response    ipsilateral foot strike -> contralateral foot off
mid stance          contralateral foot off -> midpoint between contralateral foot off and
                    contralateral foot strike (stands in for heel rise, which has no event)
terminal stance     that midpoint -> contralateral foot strike
pre-swing           contralateral foot strike -> ipsilateral foot off
swing               ipsilateral foot off -> next ipsilateral foot strike
==================  ======================================================================

A stride is labelled only when its events come in exactly this order and it is not longer
than ``max_stride_s``; samples outside labelled strides (before the first strike, after the
last, or in strides with missing or misplaced events) get :data:`UNLABELLED`.
"""

from __future__ import annotations

import numpy as np

PHASE_NAMES = ("loading_response", "mid_stance", "terminal_stance", "pre_swing", "swing")
UNLABELLED = -1
FOOT_STRIKE = 0
FOOT_OFF = 1


def _event_times(times: np.ndarray, sides: np.ndarray, kinds: np.ndarray, side: int, kind: int):
    return np.sort(times[(sides == side) & (kinds == kind)])


def _one_between(times: np.ndarray, start: float, end: float) -> float | None:
    """The single event strictly between start and end, or None if there is not exactly one."""
    inside = times[(times > start) & (times < end)]
    return float(inside[0]) if inside.size == 1 else None


def label_gait_phases(
    sample_times_s: np.ndarray,
    event_times_s: np.ndarray,
    event_sides: np.ndarray,
    event_kinds: np.ndarray,
    side: int,
    max_stride_s: float = 2.5,
) -> np.ndarray:
    """Phase index (see :data:`PHASE_NAMES`) of each sample for leg ``side`` (0 left, 1 right)."""
    if side not in (0, 1):
        raise ValueError(f"side must be 0 (left) or 1 (right), got {side}")
    times = np.asarray(event_times_s, dtype=np.float64)
    sides = np.asarray(event_sides).astype(int)
    kinds = np.asarray(event_kinds).astype(int)
    if not (times.shape == sides.shape == kinds.shape):
        raise ValueError("event times, sides and kinds must have the same length")
    finite = np.isfinite(times)
    times, sides, kinds = times[finite], sides[finite], kinds[finite]
    other = 1 - side
    strikes = _event_times(times, sides, kinds, side, FOOT_STRIKE)
    offs = _event_times(times, sides, kinds, side, FOOT_OFF)
    other_strikes = _event_times(times, sides, kinds, other, FOOT_STRIKE)
    other_offs = _event_times(times, sides, kinds, other, FOOT_OFF)

    sample_times = np.asarray(sample_times_s, dtype=np.float64)
    labels = np.full(sample_times.shape, UNLABELLED, dtype=np.int64)
    for start, end in zip(strikes[:-1], strikes[1:], strict=True):
        if end - start > max_stride_s:
            continue
        foot_off = _one_between(offs, start, end)
        if foot_off is None:
            continue
        other_off = _one_between(other_offs, start, foot_off)
        other_strike = (
            None if other_off is None else _one_between(other_strikes, other_off, foot_off)
        )
        if other_strike is None:
            continue
        bounds = np.array(
            [start, other_off, 0.5 * (other_off + other_strike), other_strike, foot_off, end]
        )
        in_stride = (sample_times >= start) & (sample_times < end)
        labels[in_stride] = np.searchsorted(bounds, sample_times[in_stride], side="right") - 1
    return labels
