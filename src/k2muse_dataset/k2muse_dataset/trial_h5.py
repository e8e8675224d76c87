"""Trial-level HDF5 files: the contract between k2muse_dataset and its readers.

Layout (docs/architecture.md section 1): continuous kinematics/kinetics at 100 Hz with time 0
at the Lock Lab trigger, gait events, accepted strides, optional sEMG and AUS. Missing
modalities are absent groups, never empty arrays.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .atomic import atomic_path

FORMAT = "k2muse-trial"
FORMAT_VERSION = 1
JOINTS = ("hip", "knee", "ankle")
SIDES = ("left", "right")
EVENT_FOOT_STRIKE = 0
EVENT_FOOT_OFF = 1
EMG_RATE_HZ = 2000.0
AUS_FRAME_RATE_HZ = 20.0


class TrialFileError(ValueError):
    """A trial HDF5 file that is not in the k2muse-trial format."""


@dataclass
class Trial:
    """One processed trial. Arrays follow docs/architecture.md section 1."""

    participant: str
    condition: str
    mode: str
    incline_deg: float
    speed_m_s: float
    trial: int
    body_mass_kg: float
    synthetic: bool
    time_s: np.ndarray
    angles_rad: dict[str, np.ndarray]
    moments_nm_per_kg: dict[str, np.ndarray]
    event_time_s: np.ndarray
    event_frame: np.ndarray
    event_side: np.ndarray
    event_kind: np.ndarray
    strides: dict[str, np.ndarray]
    powers_w_per_kg: dict[str, np.ndarray] | None = None
    emg_uv: np.ndarray | None = None
    emg_channel_names: list[str] | None = None
    aus_frames: np.ndarray | None = None
    aus_channel_names: list[str] | None = None
    source_files: list[str] = field(default_factory=list)
    sample_rate_hz: float = 100.0

    @property
    def mode_key(self) -> str:
        """``LG_0``, ``AS_5``, ``DS_10``."""
        return f"{self.mode}_{abs(round(self.incline_deg))}"

    @property
    def n_samples(self) -> int:
        """Number of kinematic samples."""
        return int(self.time_s.shape[0])

    def validate(self) -> None:
        """Raise :class:`TrialFileError` when shapes disagree with the contract."""
        n = self.n_samples
        for group in (self.angles_rad, self.moments_nm_per_kg, self.powers_w_per_kg or {}):
            for joint, values in group.items():
                if values.shape != (n, 2, 3):
                    raise TrialFileError(f"{joint}: shape {values.shape}, expected ({n}, 2, 3)")
        sizes = {a.shape for a in (self.event_time_s, self.event_frame, self.event_side,
                                   self.event_kind)}
        if len(sizes) != 1:
            raise TrialFileError(f"event arrays differ in shape: {sizes}")
        for side in SIDES:
            stride = self.strides.get(side, np.zeros((0, 2), np.int64))
            if stride.ndim != 2 or stride.shape[1] != 2:
                raise TrialFileError(f"strides/{side}: shape {stride.shape}, expected (S, 2)")
        if self.emg_uv is not None and (self.emg_uv.ndim != 2 or self.emg_uv.shape[1] != 13):
            raise TrialFileError(f"emg: shape {self.emg_uv.shape}, expected (M, 13)")
        if self.aus_frames is not None and self.aus_frames.shape[1:] != (4, 1000):
            raise TrialFileError(f"aus: shape {self.aus_frames.shape}, expected (F, 4, 1000)")


def _mode_from_incline(mode: str, incline_deg: float) -> str:
    return f"{mode}_{abs(round(incline_deg))}"


def write_trial_h5(path: str | Path, trial: Trial) -> Path:
    """Write ``trial`` atomically to ``path`` (parents created) and return the path."""
    trial.validate()
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update({
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "participant": trial.participant, "condition": trial.condition,
            "mode": trial.mode, "incline_deg": float(trial.incline_deg),
            "mode_key": _mode_from_incline(trial.mode, trial.incline_deg),
            "speed_m_s": float(trial.speed_m_s), "trial": int(trial.trial),
            "body_mass_kg": float(trial.body_mass_kg), "synthetic": bool(trial.synthetic),
            "source_files": json.dumps(list(trial.source_files)),
        })
        kin = f.create_group("kinematics")
        kin.create_dataset("time_s", data=np.asarray(trial.time_s, np.float64))
        kin.attrs["sample_rate_hz"] = float(trial.sample_rate_hz)
        for joint, values in trial.angles_rad.items():
            kin.create_dataset(f"{joint}_angle_rad", data=np.asarray(values, np.float64))
        kinetics = f.create_group("kinetics")
        for joint, values in trial.moments_nm_per_kg.items():
            kinetics.create_dataset(f"{joint}_moment_nm_per_kg",
                                    data=np.asarray(values, np.float64))
        for joint, values in (trial.powers_w_per_kg or {}).items():
            kinetics.create_dataset(f"{joint}_power_w_per_kg", data=np.asarray(values, np.float64))
        events = f.create_group("events")
        order = np.argsort(trial.event_time_s, kind="stable")
        events.create_dataset("time_s", data=np.asarray(trial.event_time_s, np.float64)[order])
        events.create_dataset("frame", data=np.asarray(trial.event_frame, np.int64)[order])
        events.create_dataset("side", data=np.asarray(trial.event_side, np.uint8)[order])
        events.create_dataset("kind", data=np.asarray(trial.event_kind, np.uint8)[order])
        strides = f.create_group("strides")
        for side in SIDES:
            data = np.asarray(trial.strides.get(side, np.zeros((0, 2))), np.int64).reshape(-1, 2)
            strides.create_dataset(side, data=data)
        if trial.emg_uv is not None:
            emg = f.create_group("emg")
            emg.create_dataset("signals_uv", data=np.asarray(trial.emg_uv, np.float32),
                               compression="lzf", shuffle=True, chunks=True)
            emg.attrs["sample_rate_hz"] = EMG_RATE_HZ
            emg.attrs["channel_names"] = json.dumps(trial.emg_channel_names or [])
        if trial.aus_frames is not None:
            aus = f.create_group("aus")
            aus.create_dataset("frames", data=np.asarray(trial.aus_frames, np.float32),
                               compression="lzf", shuffle=True,
                               chunks=(max(1, min(16, len(trial.aus_frames))), 4, 1000))
            aus.attrs["frame_rate_hz"] = AUS_FRAME_RATE_HZ
            aus.attrs["channel_names"] = json.dumps(trial.aus_channel_names or [])
    return path


def _names(attr: object) -> list[str]:
    if isinstance(attr, bytes):
        attr = attr.decode()
    if isinstance(attr, str):
        return list(json.loads(attr)) if attr.startswith("[") else [attr]
    return [a.decode() if isinstance(a, bytes) else str(a) for a in np.atleast_1d(attr)]


def read_trial_h5(path: str | Path, load_emg: bool = True, load_aus: bool = True) -> Trial:
    """Read a trial file; raise :class:`TrialFileError` naming the file when it is not one."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise TrialFileError(f"{path}: not an HDF5 file ({exc})") from None
    with f:
        if f.attrs.get("format") != FORMAT:
            raise TrialFileError(f"{path}: format attribute is {f.attrs.get('format')!r}, "
                                 f"expected {FORMAT!r}")
        if int(f.attrs.get("format_version", -1)) != FORMAT_VERSION:
            raise TrialFileError(f"{path}: unsupported format_version "
                                 f"{f.attrs.get('format_version')}")
        try:
            kin, kinetics = f["kinematics"], f["kinetics"]
            angles = {j: kin[f"{j}_angle_rad"][()] for j in JOINTS if f"{j}_angle_rad" in kin}
            moments = {j: kinetics[f"{j}_moment_nm_per_kg"][()] for j in JOINTS
                       if f"{j}_moment_nm_per_kg" in kinetics}
            powers = {j: kinetics[f"{j}_power_w_per_kg"][()] for j in JOINTS
                      if f"{j}_power_w_per_kg" in kinetics}
            ev = f["events"]
            trial = Trial(
                participant=str(f.attrs["participant"]), condition=str(f.attrs["condition"]),
                mode=str(f.attrs["mode"]), incline_deg=float(f.attrs["incline_deg"]),
                speed_m_s=float(f.attrs["speed_m_s"]), trial=int(f.attrs["trial"]),
                body_mass_kg=float(f.attrs["body_mass_kg"]),
                synthetic=bool(f.attrs["synthetic"]),
                time_s=kin["time_s"][()], sample_rate_hz=float(kin.attrs["sample_rate_hz"]),
                angles_rad=angles, moments_nm_per_kg=moments, powers_w_per_kg=powers or None,
                event_time_s=ev["time_s"][()], event_frame=ev["frame"][()],
                event_side=ev["side"][()], event_kind=ev["kind"][()],
                strides={s: f["strides"][s][()] for s in SIDES if s in f["strides"]},
                source_files=_names(f.attrs.get("source_files", "[]")),
            )
            if load_emg and "emg" in f:
                trial.emg_uv = f["emg/signals_uv"][()]
                trial.emg_channel_names = _names(f["emg"].attrs.get("channel_names", "[]"))
            if load_aus and "aus" in f:
                trial.aus_frames = f["aus/frames"][()]
                trial.aus_channel_names = _names(f["aus"].attrs.get("channel_names", "[]"))
        except KeyError as exc:
            raise TrialFileError(f"{path}: missing {exc}") from None
    return trial


def iter_trial_files(root: str | Path) -> Iterator[Path]:
    """Yield every trial file under ``root`` (or ``root/trials``), sorted by path."""
    root = Path(root)
    if root.is_file():
        yield root
        return
    yield from sorted(p for p in root.rglob("*.h5") if not p.name.startswith("."))
