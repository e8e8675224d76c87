"""Per-leg sliding window of hip angle, resampled onto the model's sample grid.

The model was trained on windows sampled at a fixed rate, but joint states arrive at whatever
rate the encoder driver or replay runs, with jitter, duplicates, reordering and dropouts. Each
leg keeps a short history of accepted raw samples; a window is the linear interpolation of that
history at ``window_length + 1`` instants spaced one model period apart (the extra leading
sample lets the first velocity of the window be a backward difference, as in training).

Where the window ends is a choice (``WindowEnd``). At the newest sample (the default), the
estimate belongs to the input's own stamp; when the input rate equals the model rate (or is an
integer multiple of it) and the stamps sit on that grid, the instants coincide with input
stamps and consecutive windows continue each other, so a streaming backend steps them. With
jittered stamps (a clocked read of real encoders) every window is resampled afresh and has to
be primed whole. On the model grid (instants at whole multiples of the model period on the
stamp clock), a window ends at the last instant at or before the newest sample: the estimate
is up to one period old and comes once per period, but consecutive windows always continue
each other, whatever the jitter, because each instant is interpolated from the same samples.

A window is valid only when the history since the last restart covers the whole window; a
non-finite or absurd sample, or a gap longer than ``max_gap_s``, restarts the history, so the
window stays invalid until it has been refilled with good data.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

NS_PER_S = 1_000_000_000


class WindowEnd(enum.Enum):
    """Where a window ends: at the newest sample, or at the model grid instant before it."""

    NEWEST_SAMPLE = "newest_sample"
    MODEL_GRID = "model_grid"


class Verdict(enum.Enum):
    """What happened to one incoming sample."""

    ACCEPTED = "accepted"
    RESTARTED_AFTER_GAP = "restarted after gap"
    DUPLICATE = "duplicate stamp"
    OUT_OF_ORDER = "out-of-order stamp"
    NON_FINITE = "non-finite angle"
    OUT_OF_RANGE = "angle out of range"
    IMPLAUSIBLE_JUMP = "implausible angle jump"

    @property
    def kept(self) -> bool:
        """True when the sample entered the history."""
        return self in (Verdict.ACCEPTED, Verdict.RESTARTED_AFTER_GAP)


@dataclass(frozen=True)
class WindowSpec:
    """Model window geometry and the plausibility limits applied to raw samples."""

    sample_rate_hz: float
    window_length: int
    max_gap_s: float = 0.05
    min_angle_rad: float = -1.0
    max_angle_rad: float = 2.6
    max_abs_velocity_rad_s: float = 20.0
    window_end: WindowEnd = WindowEnd.NEWEST_SAMPLE

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sample_rate_hz) and self.sample_rate_hz > 0.0):
            raise ValueError(f"sample_rate_hz must be positive, got {self.sample_rate_hz}")
        if self.window_length < 2:
            raise ValueError(f"window_length must be at least 2, got {self.window_length}")
        if not self.max_gap_s > 0.0:
            raise ValueError(f"max_gap_s must be positive, got {self.max_gap_s}")
        if not self.min_angle_rad < self.max_angle_rad:
            raise ValueError(
                f"min_angle_rad ({self.min_angle_rad}) must be below max_angle_rad "
                f"({self.max_angle_rad})"
            )
        if not self.max_abs_velocity_rad_s > 0.0:
            raise ValueError("max_abs_velocity_rad_s must be positive")
        if self.window_end is WindowEnd.MODEL_GRID and not float(self.period_ns).is_integer():
            raise ValueError(f"window_end {self.window_end.value} needs a model period of whole "
                             f"nanoseconds (100 Hz, 200 Hz, ...), not {self.sample_rate_hz} Hz")

    def window_end_ns(self, newest_stamp_ns: int) -> int:
        """Stamp of the last window instant for a history whose newest sample has this stamp."""
        if self.window_end is WindowEnd.NEWEST_SAMPLE:
            return newest_stamp_ns
        return newest_stamp_ns - newest_stamp_ns % int(self.period_ns)

    @property
    def period_ns(self) -> float:
        """Model sample period in nanoseconds (not necessarily an integer)."""
        return NS_PER_S / self.sample_rate_hz

    @property
    def grid_length(self) -> int:
        """Resampled points per window: the model's window plus the sample before it."""
        return self.window_length + 1

    @property
    def span_ns(self) -> float:
        """Time from the first to the last instant of a resampled window."""
        return (self.grid_length - 1) * self.period_ns

    def grid_offsets_ns(self) -> np.ndarray:
        """Window instants relative to its last one: -W·T ... 0."""
        return -self.period_ns * np.arange(self.grid_length - 1, -1, -1, dtype=np.float64)


class LegHistory:
    """Accepted raw samples of one leg since its last restart, and the window built from them."""

    def __init__(self, spec: WindowSpec, initial_capacity: int = 256):
        self.spec = spec
        self.counts: Counter[Verdict] = Counter()
        self._grid = spec.grid_offsets_ns()
        self._stamps = np.empty(initial_capacity, dtype=np.int64)
        self._angles = np.empty(initial_capacity, dtype=np.float64)
        self._start = 0  # index of the oldest retained sample
        self._end = 0  # one past the newest sample
        self.last_verdict: Verdict | None = None

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def newest_stamp_ns(self) -> int | None:
        """Stamp of the newest accepted sample, None before the first one or after a reset."""
        return int(self._stamps[self._end - 1]) if len(self) else None

    def reset(self) -> None:
        """Forget every sample (used when the input is declared stale)."""
        self._start = self._end = 0

    def add(self, stamp_ns: int, angle_rad: float) -> Verdict:
        """Offer one sample; bad samples restart the history, late or repeated ones are dropped."""
        verdict = self._judge(stamp_ns, angle_rad)
        if verdict in (Verdict.NON_FINITE, Verdict.OUT_OF_RANGE):
            self.reset()
        elif verdict == Verdict.RESTARTED_AFTER_GAP:
            self.reset()
            self._append(stamp_ns, angle_rad)
        elif verdict == Verdict.ACCEPTED:
            self._append(stamp_ns, angle_rad)
        self.counts[verdict] += 1
        self.last_verdict = verdict
        return verdict

    def _judge(self, stamp_ns: int, angle_rad: float) -> Verdict:
        spec = self.spec
        if not math.isfinite(angle_rad):
            return Verdict.NON_FINITE
        if not spec.min_angle_rad <= angle_rad <= spec.max_angle_rad:
            return Verdict.OUT_OF_RANGE
        newest = self.newest_stamp_ns
        if newest is None:
            return Verdict.ACCEPTED
        if stamp_ns == newest:
            return Verdict.DUPLICATE
        if stamp_ns < newest:
            return Verdict.OUT_OF_ORDER
        dt_s = (stamp_ns - newest) / NS_PER_S
        if dt_s > spec.max_gap_s:
            return Verdict.RESTARTED_AFTER_GAP
        # Judged over at least one model period, so stamp jitter and bursts of samples
        # microseconds apart do not turn encoder noise into an impossible velocity.
        allowed_rad = spec.max_abs_velocity_rad_s * max(dt_s, 1.0 / spec.sample_rate_hz)
        if abs(angle_rad - self._angles[self._end - 1]) > allowed_rad:
            return Verdict.IMPLAUSIBLE_JUMP
        return Verdict.ACCEPTED

    def _append(self, stamp_ns: int, angle_rad: float) -> None:
        if self._end == len(self._stamps):
            self._make_room(stamp_ns)
        self._stamps[self._end] = stamp_ns
        self._angles[self._end] = angle_rad
        self._end += 1

    def _make_room(self, incoming_stamp_ns: int) -> None:
        """Drop samples no future window can reach; grow the buffers if that frees too little."""
        stamps = self._stamps[self._start : self._end]
        # Keep the newest sample at or before the oldest instant the next window can need.
        first_needed = self.spec.window_end_ns(incoming_stamp_ns) - self.spec.span_ns
        keep_from = max(int(np.searchsorted(stamps, first_needed, side="right")) - 1, 0)
        kept = len(stamps) - keep_from
        capacity = len(self._stamps)
        if kept > capacity // 2:
            capacity *= 2
        new_stamps = np.empty(capacity, dtype=np.int64)
        new_angles = np.empty(capacity, dtype=np.float64)
        new_stamps[:kept] = stamps[keep_from:]
        new_angles[:kept] = self._angles[self._start + keep_from : self._end]
        self._stamps, self._angles = new_stamps, new_angles
        self._start, self._end = 0, kept

    def covered_fraction(self) -> float:
        """How much of a window the history spans, 0..1 (1 means a valid window)."""
        if len(self) == 0:
            return 0.0
        span = float(self._stamps[self._end - 1] - self._stamps[self._start])
        return min(span / self.spec.span_ns, 1.0)

    def window_end_ns(self) -> int | None:
        """Stamp of the last instant of the window the history gives now (None when empty)."""
        return self.spec.window_end_ns(int(self._stamps[self._end - 1])) if len(self) else None

    def window(self) -> np.ndarray | None:
        """``window_length + 1`` angles (rad) on the model grid ending at ``window_end_ns()``.

        None while the history since the last restart does not cover the window yet.
        """
        if len(self) == 0:
            return None
        stamps = self._stamps[self._start : self._end]
        end = self.window_end_ns()
        if end - int(stamps[0]) < self.spec.span_ns:
            return None
        # Interpolate on offsets from the window's end, integers exact in float64: an instant
        # gets the same value in every window that holds it, so windows continue each other.
        offsets = (stamps - end).astype(np.float64)
        first = max(int(np.searchsorted(offsets, self._grid[0], side="right")) - 1, 0)
        return np.interp(self._grid, offsets[first:], self._angles[self._start + first : self._end])
