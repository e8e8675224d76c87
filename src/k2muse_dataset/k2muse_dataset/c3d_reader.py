"""Vicon/Nexus c3d reader (ezc3d) returning Plug-in Gait outputs in SI, per-kg units.

Units are read from the POINT parameters, never assumed. Plug-in Gait normalises kinetics by
body mass but writes the plain unit ("Nmm", "W", "N"); a per-kg unit is therefore assumed for
kinetics, and checked: a hip moment peak above 10 N·m/kg can only be an absolute moment and is
divided by PROCESSING:Bodymass (or rejected when the mass is unknown).
Label quirks handled: subject prefixes (``A22:LHipAngles``), 'V'-suffixed angle labels
(``LHipAnglesV``), and duplicate model outputs (``LHipAngles_CGM_2.4``: the plain label wins).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import ezc3d
import numpy as np

from .trial_h5 import EVENT_FOOT_OFF, EVENT_FOOT_STRIKE, JOINTS

SIDE_PREFIX = ("L", "R")
_ANGLE_SCALE = {"deg": np.pi / 180.0, "degree": np.pi / 180.0, "degrees": np.pi / 180.0,
                "rad": 1.0, "radian": 1.0, "radians": 1.0}
_MOMENT_SCALE = {"nmm": 1e-3, "nm": 1.0, "knm": 1e3}
_POWER_SCALE = {"mw": 1e-3, "w": 1.0, "kw": 1e3}
_FORCE_SCALE = {"n": 1.0, "kn": 1e3, "mn": 1e-3}
_DISTANCE_SCALE = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}
PLAUSIBLE_MAX_MOMENT_NM_PER_KG = 10.0


class C3DError(ValueError):
    """A c3d file that cannot be read as a Plug-in Gait trial."""


@dataclass
class GaitEvents:
    """Gait events sorted by time; ``frame`` indexes the file's point samples."""

    time_s: np.ndarray
    frame: np.ndarray
    side: np.ndarray
    kind: np.ndarray
    ignored: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    def select(self, side: int, kind: int) -> np.ndarray:
        """Frames of one side and kind, in time order."""
        return self.frame[(self.side == side) & (self.kind == kind)]


@dataclass
class C3DTrial:
    """Contents of one c3d file in SI units; joint arrays are (N, 2 sides, 3 planes)."""

    path: Path
    point_rate_hz: float
    first_frame: int
    n_frames: int
    angles_rad: dict[str, np.ndarray]
    moments_nm_per_kg: dict[str, np.ndarray]
    powers_w_per_kg: dict[str, np.ndarray]
    forces_n_per_kg: dict[str, np.ndarray]
    events: GaitEvents
    body_mass_kg: float | None
    units: dict[str, str]
    analog_rate_hz: float
    analog_labels: list[str]
    analogs: np.ndarray
    analog_units: list[str]
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False

    @property
    def time_s(self) -> np.ndarray:
        """Sample times from the start of capture (the trigger)."""
        return (self.first_frame + np.arange(self.n_frames)) / self.point_rate_hz

    def force_plate(self, index: int) -> np.ndarray:
        """Ground reaction force of plate ``index`` (1-based) as (samples, 3) in N."""
        columns = []
        for axis in "xyz":
            pattern = re.compile(rf"(?:.*\.)?F{axis}{index}", re.IGNORECASE)
            hits = [i for i, lab in enumerate(self.analog_labels) if pattern.fullmatch(lab)]
            if not hits:
                raise C3DError(f"{self.path}: no analog channel F{axis}{index} "
                               f"(labels: {self.analog_labels[:12]})")
            unit = self.analog_units[hits[0]].strip().lower() if self.analog_units else "n"
            columns.append(self.analogs[:, hits[0]] * _FORCE_SCALE.get(unit, 1.0))
        return np.stack(columns, axis=1)


def _param(params: dict, group: str, name: str, default=None):
    try:
        return params[group][name]["value"]
    except KeyError:
        return default


def _unit(params: dict, name: str, default: str, table: dict[str, float], path: Path) -> tuple:
    value = _param(params, "POINT", name)
    unit = (value[0] if value else default).strip()
    key = unit.lower().split("/")[0]
    if key not in table:
        raise C3DError(f"{path}: POINT:{name} is {unit!r}, not one of {sorted(table)}")
    return unit, table[key]


def _label_index(labels: list[str]) -> dict[str, int]:
    """Map clean label -> column; strip subject prefixes, prefer plain over suffixed copies."""
    index: dict[str, int] = {}
    ranked: dict[str, int] = {}
    for i, raw in enumerate(labels):
        label = raw.split(":")[-1].strip()
        rank = 0
        if re.search(r"_CGM_?\d", label):
            label, rank = re.sub(r"_CGM_?[\d.]+$", "", label), 2
        elif re.fullmatch(r".*Angles?V", label):
            label, rank = label[:-1], 1
        if label not in index or rank < ranked[label]:
            index[label], ranked[label] = i, rank
    return index


def _joint_series(points: np.ndarray, index: dict[str, int], joint: str, suffixes: tuple,
                  scale: float) -> np.ndarray | None:
    """(N, 2, 3) array for L/R ``<Joint><suffix>``; None when neither side is present."""
    sides = []
    for prefix in SIDE_PREFIX:
        col = next((index[f"{prefix}{joint.capitalize()}{s}"] for s in suffixes
                    if f"{prefix}{joint.capitalize()}{s}" in index), None)
        sides.append(None if col is None else points[:3, col, :].T * scale)
    if all(s is None for s in sides):
        return None
    n = next(s.shape[0] for s in sides if s is not None)
    filled = [np.full((n, 3), np.nan) if s is None else s for s in sides]
    return np.stack(filled, axis=1)


def _events(params: dict, rate: float, first_frame: int, n_frames: int,
            path: Path) -> GaitEvents:
    times = _param(params, "EVENT", "TIMES")
    labels = list(_param(params, "EVENT", "LABELS", []) or [])
    contexts = list(_param(params, "EVENT", "CONTEXTS", []) or [])
    used = int(np.atleast_1d(_param(params, "EVENT", "USED", [len(labels)]))[0])
    empty = GaitEvents(*(np.zeros(0, t) for t in (np.float64, np.int64, np.uint8, np.uint8)))
    if times is None or used == 0:
        return empty
    times = np.asarray(times, dtype=np.float64)
    if times.ndim == 1:
        times = times.reshape(-1, 2).T  # flattened column-major 2xN
    if times.shape[0] != 2 or times.shape[1] < used or len(labels) < used or len(contexts) < used:
        raise C3DError(f"{path}: EVENT group inconsistent (TIMES {times.shape}, "
                       f"{len(labels)} labels, {len(contexts)} contexts, USED {used})")
    seconds = times[0, :used] * 60.0 + times[1, :used]
    rows, ignored = [], []
    for t, label, context in zip(seconds, labels[:used], contexts[:used], strict=True):
        side = {"left": 0, "right": 1}.get(context.strip().lower())
        kind = {"foot strike": EVENT_FOOT_STRIKE, "foot off": EVENT_FOOT_OFF}.get(
            label.strip().lower())
        frame = int(round(t * rate)) - first_frame
        if side is None or kind is None:
            ignored.append(f"{context}/{label} at {t:.3f} s (not a Left/Right Foot Strike/Off)")
        elif not 0 <= frame < n_frames:
            ignored.append(f"{context}/{label} at {t:.3f} s (outside the recorded frames)")
        else:
            rows.append((t, frame, side, kind))
    if not rows:
        empty.ignored = ignored
        return empty
    rows.sort()
    t, fr, sd, kd = zip(*rows, strict=True)
    return GaitEvents(np.array(t), np.array(fr, np.int64), np.array(sd, np.uint8),
                      np.array(kd, np.uint8), ignored)


def _check_complete(path: Path, c3d) -> None:
    """Compare the file size with its raw header; ezc3d reads truncated files silently."""
    with open(path, "rb") as fh:
        raw = fh.read(24)
    processor = _param(c3d["parameters"], "__METADATA__", "PROCESSOR")
    order = ">" if processor == "MIPS" else "<"
    n_points, analog_per_frame, first, last, _, _, data_start = struct.unpack(
        order + "HHHHHfH", raw[2:18])
    scale = float(np.atleast_1d(_param(c3d["parameters"], "POINT", "SCALE", [-1.0]))[0])
    word = 4 if scale < 0 else 2
    if last < first or data_start == 0:
        return  # long trials keep their frame count elsewhere; nothing to compare
    frame_bytes = (4 * n_points + analog_per_frame) * word
    expected = (data_start - 1) * 512 + (last - first + 1) * frame_bytes
    actual = path.stat().st_size
    if actual < expected:
        raise C3DError(f"{path}: truncated ({actual} bytes, header needs {expected})")


def read_c3d(path: str | Path) -> C3DTrial:
    """Read one Plug-in Gait c3d file; raise :class:`C3DError` naming the file on bad input."""
    path = Path(path)
    if not path.is_file():
        raise C3DError(f"{path}: no such file")
    try:
        c3d = ezc3d.c3d(str(path))
    except Exception as exc:  # ezc3d raises bare RuntimeError/IOError on broken files
        raise C3DError(f"{path}: not a readable c3d file ({exc})") from None
    params = c3d["parameters"]
    _check_complete(path, c3d)
    points = np.asarray(c3d["data"]["points"], dtype=np.float64)
    rate = float(c3d["header"]["points"]["frame_rate"])
    first_frame = int(c3d["header"]["points"]["first_frame"])
    n_frames = points.shape[2]
    if rate <= 0 or n_frames == 0:
        raise C3DError(f"{path}: no point data (rate {rate} Hz, {n_frames} frames)")
    labels = list(_param(params, "POINT", "LABELS", []) or [])
    for extra in ("LABELS2", "LABELS3", "LABELS4"):
        labels += list(_param(params, "POINT", extra, []) or [])
    index = _label_index(labels[: points.shape[1]])
    units = {}
    units["angle"], angle_scale = _unit(params, "ANGLE_UNITS", "deg", _ANGLE_SCALE, path)
    units["moment"], moment_scale = _unit(params, "MOMENT_UNITS", "Nmm", _MOMENT_SCALE, path)
    units["power"], power_scale = _unit(params, "POWER_UNITS", "W", _POWER_SCALE, path)
    units["force"], force_scale = _unit(params, "FORCE_UNITS", "N", _FORCE_SCALE, path)
    units["distance"], _ = _unit(params, "UNITS", "mm", _DISTANCE_SCALE, path)
    mass = _param(params, "PROCESSING", "Bodymass")
    body_mass = float(np.atleast_1d(mass)[0]) if mass is not None and len(mass) else None
    if body_mass is not None and not body_mass > 0:
        body_mass = None

    angles, moments, powers, forces = {}, {}, {}, {}
    for joint in JOINTS:
        for target, suffixes, scale in ((angles, ("Angles", "Angle"), angle_scale),
                                        (moments, ("Moment", "Moments"), moment_scale),
                                        (powers, ("Power", "Powers"), power_scale),
                                        (forces, ("Force", "Forces"), force_scale)):
            series = _joint_series(points, index, joint, suffixes, scale)
            if series is not None:
                target[joint] = series
    if "hip" not in angles:
        raise C3DError(f"{path}: no Plug-in Gait hip angles (expected LHipAngles/RHipAngles; "
                       f"found labels {labels[:8]}...)")
    notes = []
    if "hip" in moments:
        peak = float(np.nanmax(np.abs(moments["hip"][:, :, 0]), initial=0.0))
        if peak > PLAUSIBLE_MAX_MOMENT_NM_PER_KG:
            if body_mass is None:
                raise C3DError(f"{path}: hip moment peak {peak:.1f} N·m is absolute and "
                               "PROCESSING:Bodymass is missing, cannot normalise")
            for joint in moments:
                moments[joint] = moments[joint] / body_mass
            notes.append(f"moments were absolute; divided by body mass {body_mass} kg")

    analogs = np.asarray(c3d["data"]["analogs"], dtype=np.float64)
    analogs = analogs[0].T if analogs.size else np.zeros((0, 0))
    analog_labels = list(_param(params, "ANALOG", "LABELS", []) or [])
    manufacturer = params.get("MANUFACTURER", {})
    synthetic = "synthetic" in " ".join(
        str(v) for v in (manufacturer.get("SOFTWARE", {}).get("value") or [])).lower()
    return C3DTrial(
        path=path, point_rate_hz=rate, first_frame=first_frame, n_frames=n_frames,
        angles_rad=angles, moments_nm_per_kg=moments, powers_w_per_kg=powers,
        forces_n_per_kg=forces,
        events=_events(params, rate, first_frame, n_frames, path), body_mass_kg=body_mass,
        units=units, analog_rate_hz=float(c3d["header"]["analogs"]["frame_rate"]),
        analog_labels=analog_labels[: analogs.shape[1]] if analogs.size else [],
        analogs=analogs, analog_units=list(_param(params, "ANALOG", "UNITS", []) or []),
        notes=notes, synthetic=synthetic,
    )
