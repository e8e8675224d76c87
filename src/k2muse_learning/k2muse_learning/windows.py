"""Trial HDF5 files -> per-leg series -> fixed-length windows of hip signals -> hip moment.

Each leg of each trial is a separate series (one model serves both legs; the sagittal hip
angle and moment need no mirroring). Inputs are raw SI values in the manifest's channel order:
hip_angle (rad, flexion +) and optionally hip_velocity (rad/s, the backward difference of
``k2muse_model.features.angular_velocity``, the same call the live estimator makes). The
target is the sagittal hip moment (N·m/kg, extension +) at the window's last sample, restricted
to the trial's accepted strides.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from k2muse_dataset.trial_h5 import SIDES, Trial, TrialFileError, iter_trial_files, read_trial_h5
from k2muse_model.features import angular_velocity
from numpy.lib.stride_tricks import sliding_window_view

from k2muse_learning.artifacts import INPUT_UNITS

LOG = logging.getLogger(__name__)
SAGITTAL = 0


@dataclass(frozen=True)
class LegSeries:
    """One leg of one trial: raw inputs (C, N), hip moment (N,) and where targets count."""

    source: str
    participant: str
    condition: str
    mode_key: str
    speed_m_s: float
    trial: int
    side: str
    synthetic: bool
    sample_rate_hz: float
    inputs: np.ndarray
    moment: np.ndarray
    target_mask: np.ndarray
    heel_strikes: np.ndarray

    @property
    def trial_id(self) -> str:
        """Identifies the trial (both legs share it): folds split on this."""
        return self.source

    def tail(self, start: int) -> LegSeries:
        """Series whose targets are only samples >= start (inputs kept for history)."""
        mask = self.target_mask.copy()
        mask[:start] = False
        return _replace_mask(self, mask)

    def head(self, stop: int) -> LegSeries:
        """Series whose targets are only samples < stop."""
        mask = self.target_mask.copy()
        mask[stop:] = False
        return _replace_mask(self, mask)


def _replace_mask(leg: LegSeries, mask: np.ndarray) -> LegSeries:
    fields = dict(leg.__dict__)
    fields["target_mask"] = mask
    return LegSeries(**fields)


def check_input_names(input_names: Sequence[str]) -> list[str]:
    """Validate channel names against the manifest vocabulary (hip_angle first)."""
    names = list(input_names)
    if not names or names[0] != "hip_angle" or any(n not in INPUT_UNITS for n in names) \
            or len(set(names)) != len(names):
        raise ValueError(f"inputs must start with hip_angle and use {list(INPUT_UNITS)} "
                         f"once each, got {names}")
    return names


def legs_from_trial(trial: Trial, source: str, input_names: Sequence[str]) -> list[LegSeries]:
    """Split a trial into its left and right leg series."""
    names = check_input_names(input_names)
    if "hip" not in trial.angles_rad or "hip" not in trial.moments_nm_per_kg:
        raise TrialFileError(f"{source}: no hip angle or hip moment")
    legs = []
    for side_index, side in enumerate(SIDES):
        angle = trial.angles_rad["hip"][:, side_index, SAGITTAL]
        channels = {"hip_angle": angle,
                    "hip_velocity": angular_velocity(angle, trial.sample_rate_hz)}
        moment = trial.moments_nm_per_kg["hip"][:, side_index, SAGITTAL]
        strides = np.asarray(trial.strides.get(side, np.zeros((0, 2))), np.int64).reshape(-1, 2)
        mask = np.zeros(moment.shape, bool)
        for start, stop in strides:
            mask[max(start, 0):max(stop, 0)] = True
        mask &= np.isfinite(moment)
        legs.append(LegSeries(
            source=source, participant=trial.participant, condition=trial.condition,
            mode_key=trial.mode_key, speed_m_s=float(trial.speed_m_s), trial=int(trial.trial),
            side=side, synthetic=bool(trial.synthetic),
            sample_rate_hz=float(trial.sample_rate_hz),
            inputs=np.stack([channels[n] for n in names]).astype(np.float32),
            moment=moment.astype(np.float32), target_mask=mask,
            heel_strikes=np.unique(strides.ravel())))
    return legs


def load_legs(root_or_files: str | os.PathLike | Iterable[str | os.PathLike],
              input_names: Sequence[str], mode_keys: Sequence[str] | None = None,
              participants: Sequence[str] | None = None,
              conditions: Sequence[str] | None = None) -> list[LegSeries]:
    """Read trial files (a folder is searched recursively) into leg series, filtered.

    A file that cannot be read is skipped with a warning naming it, so one bad trial does not
    stop a batch; no readable trial at all is an error.
    """
    if isinstance(root_or_files, (str, os.PathLike)):
        files = list(iter_trial_files(root_or_files))
    else:
        files = [Path(f) for f in root_or_files]
    legs, skipped = [], 0
    for path in files:
        try:
            trial = read_trial_h5(path, load_emg=False, load_aus=False)
            if ((mode_keys and trial.mode_key not in mode_keys)
                    or (participants and trial.participant not in participants)
                    or (conditions and trial.condition not in conditions)):
                continue
            legs.extend(legs_from_trial(trial, str(path), input_names))
        except (TrialFileError, OSError, KeyError, ValueError) as error:
            skipped += 1
            LOG.warning("skipping trial %s: %s", path, error)
    if not legs:
        raise FileNotFoundError(f"no usable trial files in {root_or_files} for modes "
                                f"{mode_keys or 'any'}, participants {participants or 'any'}"
                                f" ({skipped} unreadable)")
    return legs


@dataclass(frozen=True)
class WindowSet:
    """Windows (N, C, L), targets (N, K) (NaN: does not count), leg index, last sample index."""

    inputs: np.ndarray
    targets: np.ndarray
    leg_index: np.ndarray
    end_index: np.ndarray

    def __len__(self) -> int:
        return len(self.inputs)


def cut_windows(legs: Sequence[LegSeries], window_length: int, hop: int = 1,
                targets_per_window: int = 1) -> WindowSet:
    """Cut every leg into windows whose last targets_per_window samples carry targets.

    Window length is window_length + targets_per_window - 1, so each target has a full
    window_length of history. Windows with a non-finite input are dropped; so are windows
    with no counting target. With targets_per_window=1 this is the deployment contract:
    a window of window_length samples -> the moment at its last sample.
    """
    if window_length < 1 or hop < 1 or targets_per_window < 1:
        raise ValueError("window_length, hop and targets_per_window must be >= 1")
    span = window_length + targets_per_window - 1
    inputs, targets, owners, last = [], [], [], []
    for index, leg in enumerate(legs):
        n = leg.moment.size
        if n < span:
            continue
        ends = np.arange(span - 1, n, hop)
        bad_input = np.concatenate([[0], np.cumsum(~np.all(np.isfinite(leg.inputs), axis=0))])
        finite = bad_input[ends + 1] - bad_input[ends + 1 - span] == 0
        target = np.where(leg.target_mask, leg.moment, np.nan)
        target_rows = sliding_window_view(target, targets_per_window)[ends - targets_per_window + 1]
        keep = finite & np.any(np.isfinite(target_rows), axis=1)
        if not np.any(keep):
            continue
        view = sliding_window_view(leg.inputs, span, axis=1)  # (C, n - span + 1, span)
        inputs.append(np.transpose(view[:, ends[keep] - span + 1], (1, 0, 2)))
        targets.append(target_rows[keep])
        owners.append(np.full(int(keep.sum()), index))
        last.append(ends[keep])
    if not inputs:
        channels = legs[0].inputs.shape[0] if legs else 0
        return WindowSet(np.zeros((0, channels, span), np.float32),
                         np.zeros((0, targets_per_window), np.float32), np.zeros(0, int),
                         np.zeros(0, int))
    return WindowSet(np.ascontiguousarray(np.concatenate(inputs), dtype=np.float32),
                     np.concatenate(targets).astype(np.float32), np.concatenate(owners),
                     np.concatenate(last))


def finite_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True values."""
    edges = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))
