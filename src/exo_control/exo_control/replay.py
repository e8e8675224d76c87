"""When each sample and gait event of a replayed trial is due (no ROS imports).

The replay node asks a :class:`ReplayCursor` on every timer tick which samples have become due
since the last tick, given the time elapsed on the ROS clock since playback started. Publishing
every due sample (rather than one per tick) keeps the replay at the capture rate on average even
when the timer is late, and each sample carries its *scheduled* play time so the stamps keep the
capture spacing (scaled by ``rate_scale``) instead of the timer's jitter.

Time bases: trial time ``t`` is the recording's own clock (seconds, 0 at the trigger for K2MUSE
trials); play time is the time since playback started. A pass plays trial times from
``t_first + start_offset_s`` to the last sample; with ``loop`` the next pass starts one sample
period after the previous one ended, so play times (and stamps) keep increasing across passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from exo_common.params import spec, validate_fields

from exo_control.trial_source import DEFAULT_JOINT_NAMES


@dataclass(frozen=True)
class ReplayNodeConfig:
    """Parameters of the ``trial_replay`` node."""

    trial_file: str = spec("", "processed trial .h5 file, or a rosbag2 bag folder / .mcap file")
    rate_scale: float = spec(1.0, "playback speed relative to the capture rate (2.0 = twice as"
                             " fast)", 0.01, 100.0)
    loop: bool = spec(False, "start over after the last sample instead of exiting")
    start_offset_s: float = spec(0.0, "skip this much of the trial (trial seconds) before"
                                 " playing", 0.0, 1.0e6)
    joint_names: list[str] = spec(DEFAULT_JOINT_NAMES, "JointState names of the left and right"
                                  " hip joints")
    wait_for_subscribers: int = spec(0, "hold playback until joint_states has this many"
                                     " subscribers", 0, 64)
    subscriber_wait_s: float = spec(30.0, "longest hold for subscribers, s; playback starts"
                                    " anyway afterwards", 0.0, 3600.0)
    realtime_priority: int = spec(0, "SCHED_FIFO priority (0: normal scheduling); the replay"
                                  " stands in for an encoder driver, which samples on time on"
                                  " the exo", 0, 98)

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class DueItem:
    """One sample (or event) to publish now: its index in the trial and its scheduled play time."""

    index: int
    play_time_s: float
    pass_index: int


class ReplayCursor:
    """Stateful schedule over a trial's sample times and gait-event times."""

    def __init__(
        self,
        sample_time_s: np.ndarray,
        event_time_s: np.ndarray | None = None,
        *,
        rate_scale: float = 1.0,
        loop: bool = False,
        start_offset_s: float = 0.0,
    ) -> None:
        sample_time_s = np.asarray(sample_time_s, dtype=np.float64)
        if sample_time_s.ndim != 1 or sample_time_s.size < 2:
            raise ValueError("a trial needs at least two samples to replay")
        if not np.all(np.isfinite(sample_time_s)) or np.any(np.diff(sample_time_s) <= 0.0):
            raise ValueError("sample times must be finite and strictly increasing")
        if not (math.isfinite(rate_scale) and rate_scale > 0.0):
            raise ValueError(f"rate_scale must be a positive number, got {rate_scale}")
        if not (math.isfinite(start_offset_s) and start_offset_s >= 0.0):
            raise ValueError(f"start_offset_s must be >= 0, got {start_offset_s}")
        start_time = sample_time_s[0] + start_offset_s
        first = int(np.searchsorted(sample_time_s, start_time - 1e-9, side="left"))
        if first >= sample_time_s.size:
            duration = sample_time_s[-1] - sample_time_s[0]
            raise ValueError(
                f"start_offset_s={start_offset_s} s is past the end of the trial ({duration:.3f} s)"
            )
        self._times = sample_time_s
        self._first = first
        self._start_time = float(sample_time_s[first])
        period = float(np.median(np.diff(sample_time_s)))
        self.sample_period_s = period
        # Trial-time length of one pass, including the gap before the next pass starts.
        self._pass_length_s = float(sample_time_s[-1] - self._start_time) + period
        events = np.asarray(event_time_s if event_time_s is not None else [], dtype=np.float64)
        keep = np.isfinite(events) & (events >= self._start_time) & (events <= sample_time_s[-1])
        self._event_index = np.flatnonzero(keep)
        self._event_times = events[keep]
        order = np.argsort(self._event_times, kind="stable")
        self._event_index, self._event_times = self._event_index[order], self._event_times[order]
        self.rate_scale = float(rate_scale)
        self.loop = bool(loop)
        self._next_sample = first
        self._next_event = 0
        self._sample_pass = 0
        self._event_pass = 0

    @property
    def pass_duration_s(self) -> float:
        """Play-time length of one pass (wall seconds at ``rate_scale``)."""
        return self._pass_length_s / self.rate_scale

    @property
    def finished(self) -> bool:
        """True once every sample of a non-looping replay has been handed out."""
        return not self.loop and self._next_sample >= self._times.size

    def _play_time(self, trial_time_s: float, pass_index: int) -> float:
        trial_offset_s = trial_time_s - self._start_time + pass_index * self._pass_length_s
        return trial_offset_s / self.rate_scale

    def due_samples(self, elapsed_s: float) -> list[DueItem]:
        """Samples whose play time is <= ``elapsed_s`` and that were not handed out before."""
        due: list[DueItem] = []
        while not self.finished:
            play = self._play_time(self._times[self._next_sample], self._sample_pass)
            if play > elapsed_s:
                break
            due.append(DueItem(self._next_sample, play, self._sample_pass))
            self._next_sample += 1
            if self._next_sample >= self._times.size and self.loop:
                self._next_sample = self._first
                self._sample_pass += 1
        return due

    def due_events(self, elapsed_s: float) -> list[DueItem]:
        """Gait events whose play time is <= ``elapsed_s`` and that were not handed out before."""
        due: list[DueItem] = []
        count = self._event_times.size
        while count and (self.loop or self._event_pass == 0) and self._next_event < count:
            play = self._play_time(self._event_times[self._next_event], self._event_pass)
            if play > elapsed_s:
                break
            due.append(DueItem(int(self._event_index[self._next_event]), play, self._event_pass))
            self._next_event += 1
            if self._next_event >= count and self.loop:
                self._next_event = 0
                self._event_pass += 1
        return due
