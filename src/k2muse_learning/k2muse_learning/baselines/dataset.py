"""Turn trial HDF5 files (docs/architecture.md, section 1) into row-aligned features and labels.

Files are read with :func:`k2muse_dataset.trial_h5.read_trial_h5`; a trial without AUS or
sEMG still serves the other modality.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from k2muse_dataset.batch import run_batch
from k2muse_dataset.trial_h5 import (
    AUS_FRAME_RATE_HZ,
    EMG_RATE_HZ,
    Trial,
    TrialFileError,
    iter_trial_files,
    read_trial_h5,
)

from .features import (
    EmgFilterSpec,
    WindowSpec,
    aus_frame_features,
    aus_window_features,
    emg_window_features,
    filter_emg,
)
from .phases import label_gait_phases

JOINTS = ("hip", "knee", "ankle")
MODALITIES = ("emg", "aus", "both")
SIDES = {"left": 0, "right": 1}


@dataclass(frozen=True)
class FeatureConfig:
    """Everything that decides the feature rows; part of a sweep's config file."""

    window: WindowSpec = field(default_factory=WindowSpec)
    emg_filter: EmgFilterSpec = field(default_factory=EmgFilterSpec)
    aus_depth_bins: int = 10
    side: str = "left"

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {sorted(SIDES)}, got {self.side!r}")


@dataclass
class TrialFeatures:
    """One trial's feature rows, sagittal joint angles (deg) and gait-phase labels, row-aligned.

    ``modalities`` holds (rows, features) arrays for "emg" and/or "aus"; rows where a modality
    has no data are NaN. ``angles_deg`` is NaN where the kinematics have gaps; ``phases`` is
    :data:`~.phases.UNLABELLED` outside labelled strides.
    """

    key: str
    participant: str
    condition: str
    mode_key: str
    trial: int
    time_s: np.ndarray
    angles_deg: np.ndarray
    phases: np.ndarray
    modalities: dict[str, np.ndarray]

    def features(self, modality: str) -> np.ndarray | None:
        """Feature matrix of a modality ("emg", "aus" or "both"), or None if it is missing."""
        if modality == "both":
            parts = [self.modalities.get(name) for name in ("emg", "aus")]
            return None if any(p is None for p in parts) else np.hstack(parts)
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
        return self.modalities.get(modality)


def load_trial_features(path: str | Path, config: FeatureConfig) -> TrialFeatures:
    """Read one trial file and compute its feature rows; raises TrialFileError naming the file."""
    path = Path(path)
    return trial_features(read_trial_h5(path), path.stem, config, source=str(path))


def trial_features(
    trial: Trial, key: str, config: FeatureConfig, source: str = "trial"
) -> TrialFeatures:
    """Feature rows, sagittal angles (deg) and phase labels of an in-memory trial."""
    side = SIDES[config.side]
    if trial.sample_rate_hz != config.window.kinematics_rate_hz:
        raise TrialFileError(
            f"{source}: kinematics at {trial.sample_rate_hz} Hz, features configured for "
            f"{config.window.kinematics_rate_hz} Hz"
        )
    missing = [j for j in JOINTS if j not in trial.angles_rad]
    if missing:
        raise TrialFileError(f"{source}: no {', '.join(missing)} angles")
    ends = config.window.window_ends(trial.n_samples)
    if ends.size == 0:
        raise TrialFileError(f"{source}: trial shorter than one feature window")
    end_times = np.asarray(trial.time_s, dtype=np.float64)[ends]
    angles = np.stack([trial.angles_rad[j][ends, side, 0] for j in JOINTS], axis=1)
    phases = label_gait_phases(
        end_times, trial.event_time_s, trial.event_side, trial.event_kind, side=side
    )
    modalities: dict[str, np.ndarray] = {}
    length = config.window.length_s
    if trial.emg_uv is not None:
        filtered = filter_emg(trial.emg_uv, EMG_RATE_HZ, config.emg_filter)
        modalities["emg"] = emg_window_features(
            filtered, EMG_RATE_HZ, end_times, length, config.emg_filter.zc_threshold_uv
        )
    if trial.aus_frames is not None:
        per_frame = aus_frame_features(trial.aus_frames, config.aus_depth_bins)
        modalities["aus"] = aus_window_features(per_frame, AUS_FRAME_RATE_HZ, end_times, length)
    return TrialFeatures(
        key=key,
        participant=trial.participant,
        condition=trial.condition,
        mode_key=trial.mode_key,
        trial=trial.trial,
        time_s=end_times,
        angles_deg=np.degrees(angles),
        phases=phases,
        modalities=modalities,
    )


def find_trial_files(root: str | Path) -> list[Path]:
    """Trial files under ``root`` (a processed dataset folder or its ``trials`` folder), sorted."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such dataset folder")
    return list(iter_trial_files(root))


def _load_or_problem(path: str | Path,
                     config: FeatureConfig) -> tuple[TrialFeatures | None, str | None]:
    try:
        return load_trial_features(path, config), None
    except (TrialFileError, ValueError) as exc:
        return None, str(exc)


def load_dataset(
    paths: Iterable[str | Path],
    config: FeatureConfig,
    participants: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    mode_keys: Sequence[str] | None = None,
    jobs: int = 1,
    progress: bool = False,
) -> tuple[list[TrialFeatures], list[str]]:
    """Load many trials in parallel, keeping those that match the filters.

    Returns (trials, problems): an unreadable file is reported in ``problems`` and skipped, so
    one bad file never stops a sweep. Ctrl-C stops after the files being read (``run_batch``).
    """
    results = run_batch(_load_or_problem, [(path, config) for path in paths], jobs,
                        "features", progress)
    keep = []
    problems = [msg for _, msg in results if msg is not None]
    for trial, _ in results:
        if trial is None:
            continue
        if participants and trial.participant not in participants:
            continue
        if conditions and trial.condition not in conditions:
            continue
        if mode_keys and trial.mode_key not in mode_keys:
            continue
        keep.append(trial)
    return keep, problems
