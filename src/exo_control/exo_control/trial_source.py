"""Load what the replay publishes from a processed trial HDF5 file or a rosbag2 bag (no ROS).

Both sources reduce to a :class:`ReplayTrial`: per-sample sagittal hip angle, velocity and
(where known) measured hip moment for the left and right leg, plus the gait events. Trial HDF5
files are read with ``k2muse_dataset.trial_h5`` (the contract owner); bags are read with rosbags,
so the replay also stands in for ``ros2 bag play`` on bags written by ``k2muse export-bag`` or by
``topic_recorder``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from k2muse_model.features import angular_velocity

SAGITTAL = 0
DEFAULT_JOINT_NAMES = ("left_hip_joint", "right_hip_joint")


class TrialSourceError(ValueError):
    """A replay source that cannot be read; the message names the file and the problem."""


@dataclass(frozen=True)
class ReplayTrial:
    """Per-sample hip signals of one trial, sides on axis 1 (0 left, 1 right)."""

    source: str
    time_s: np.ndarray                        # (N,) strictly increasing
    hip_angle_rad: np.ndarray                 # (N, 2) flexion +
    hip_velocity_rad_s: np.ndarray            # (N, 2)
    hip_moment_nm_per_kg: np.ndarray | None   # (N, 2) internal moment, extension +; None unknown
    event_time_s: np.ndarray                  # (E,)
    event_side: np.ndarray                    # (E,) 0 left, 1 right
    event_kind: np.ndarray                    # (E,) 0 foot strike, 1 foot off
    mode_key: str = ""

    def __post_init__(self) -> None:
        n = self.time_s.shape[0]
        if self.time_s.ndim != 1 or n < 2:
            raise TrialSourceError(f"{self.source}: needs at least two samples, found {n}")
        if not np.all(np.isfinite(self.time_s)) or np.any(np.diff(self.time_s) <= 0.0):
            raise TrialSourceError(f"{self.source}: sample times are not strictly increasing")
        arrays = [self.hip_angle_rad, self.hip_velocity_rad_s]
        if self.hip_moment_nm_per_kg is not None:
            arrays.append(self.hip_moment_nm_per_kg)
        for values in arrays:
            if values.shape != (n, 2):
                raise TrialSourceError(f"{self.source}: hip signal of shape {values.shape}, "
                                       f"expected ({n}, 2)")
        if not self.event_time_s.shape == self.event_side.shape == self.event_kind.shape:
            raise TrialSourceError(f"{self.source}: event arrays differ in length")

    @property
    def sample_rate_hz(self) -> float:
        """Capture rate from the median sample spacing."""
        return float(1.0 / np.median(np.diff(self.time_s)))

    @property
    def duration_s(self) -> float:
        """Time from the first to the last sample."""
        return float(self.time_s[-1] - self.time_s[0])


def load_trial_h5(path: str | Path) -> ReplayTrial:
    """Read a processed trial HDF5 file (architecture contract 1)."""
    from k2muse_dataset.trial_h5 import TrialFileError, read_trial_h5

    try:
        trial = read_trial_h5(path, load_emg=False, load_aus=False)
    except TrialFileError as exc:
        raise TrialSourceError(str(exc)) from None
    if "hip" not in trial.angles_rad:
        raise TrialSourceError(f"{path}: no kinematics/hip_angle_rad to replay")
    time_s = np.asarray(trial.time_s, np.float64)
    angle = np.asarray(trial.angles_rad["hip"][:, :, SAGITTAL], np.float64)
    moments = trial.moments_nm_per_kg.get("hip")
    return ReplayTrial(
        source=str(path),
        time_s=time_s,
        hip_angle_rad=angle,
        hip_velocity_rad_s=angular_velocity(angle, time_s=time_s),
        hip_moment_nm_per_kg=None if moments is None else np.asarray(moments[:, :, SAGITTAL]),
        event_time_s=np.asarray(trial.event_time_s, np.float64),
        event_side=np.asarray(trial.event_side, np.uint8),
        event_kind=np.asarray(trial.event_kind, np.uint8),
        mode_key=trial.mode_key,
    )


def _stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def load_trial_bag(
    path: str | Path,
    joint_names: Sequence[str] = DEFAULT_JOINT_NAMES,
    joint_topic: str = "/joint_states",
    event_topic: str = "/gait_events",
) -> ReplayTrial:
    """Read hip joint states (and gait events, if recorded) from a rosbag2 bag folder or file.

    Times come from the message header stamps, relative to the first joint state (kept in
    integer nanoseconds until then, so wall-clock stamps lose no precision). A joint state
    must name both hip joints; effort
    (measured moment) is used only when every kept message carries it.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2.errors import ReaderError

    from .recorder import exo_typestore

    path = Path(path)
    bag_dir = path.parent if path.is_file() else path
    rows: list[tuple[int, list[float], list[float], list[float] | None]] = []
    events: list[tuple[int, int, int]] = []
    try:
        with AnyReader([bag_dir], default_typestore=exo_typestore()) as reader:
            wanted = [c for c in reader.connections if c.topic in (joint_topic, event_topic)]
            if not any(c.topic == joint_topic for c in wanted):
                raise TrialSourceError(f"{path}: bag has no {joint_topic} topic")
            for connection, _, raw in reader.messages(connections=wanted):
                msg = reader.deserialize(raw, connection.msgtype)
                if connection.topic == event_topic:
                    events.append((_stamp_ns(msg.header), int(msg.side), int(msg.kind)))
                    continue
                try:
                    idx = [list(msg.name).index(name) for name in joint_names]
                except ValueError:
                    continue
                effort = list(msg.effort)
                rows.append((
                    _stamp_ns(msg.header),
                    [float(msg.position[i]) for i in idx],
                    [float(msg.velocity[i]) if len(msg.velocity) > i else np.nan for i in idx],
                    [float(effort[i]) for i in idx] if len(effort) > max(idx) else None,
                ))
    except (ReaderError, OSError, KeyError) as exc:
        raise TrialSourceError(f"{path}: cannot read bag ({exc})") from None
    if len(rows) < 2:
        raise TrialSourceError(
            f"{path}: fewer than two {joint_topic} messages name {', '.join(joint_names)}"
        )
    rows.sort(key=lambda row: row[0])
    first_ns = rows[0][0]
    time_s = np.array([(r[0] - first_ns) * 1e-9 for r in rows])
    angle = np.array([r[1] for r in rows])
    velocity = np.array([r[2] for r in rows])
    if np.isnan(velocity).all():
        velocity = angular_velocity(angle, time_s=time_s)
    has_effort = all(r[3] is not None for r in rows)
    moment = np.array([r[3] for r in rows]) if has_effort else None
    events.sort()
    event_array = np.array([((t - first_ns) * 1e-9, side, kind) for t, side, kind in events],
                           dtype=np.float64).reshape(-1, 3)
    return ReplayTrial(
        source=str(path),
        time_s=time_s,
        hip_angle_rad=angle,
        hip_velocity_rad_s=velocity,
        hip_moment_nm_per_kg=moment,
        event_time_s=event_array[:, 0],
        event_side=event_array[:, 1].astype(np.uint8),
        event_kind=event_array[:, 2].astype(np.uint8),
    )


def load_trial(path: str | Path, joint_names: Sequence[str] = DEFAULT_JOINT_NAMES) -> ReplayTrial:
    """Load a replay source by its kind: ``*.h5`` trial file, or a rosbag2 folder / ``.mcap``."""
    path = Path(path)
    if not path.exists():
        raise TrialSourceError(f"{path}: no such file or folder")
    if path.is_file() and path.suffix in (".h5", ".hdf5"):
        return load_trial_h5(path)
    if path.is_dir() or path.suffix in (".mcap", ".db3", ".yaml"):
        return load_trial_bag(path, joint_names)
    raise TrialSourceError(f"{path}: neither a trial .h5 file nor a rosbag2 bag")
