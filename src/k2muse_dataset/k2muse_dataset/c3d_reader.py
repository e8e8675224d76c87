"""Vicon/Nexus c3d reader (ezc3d) returning Plug-in Gait outputs in SI, per-kg units.

Every model output (L/R Hip/Knee/Ankle Angles, Moment, Power, Force) is found by label pattern
(any subject prefix, any suffix; :func:`naming.parse_model_output_label`) and checked as its
own channel, per side:

- exact zeros in all three components are gaps Nexus wrote instead of NaN -> NaN;
- units come from the POINT parameters. Plug-in Gait writes per-kg kinetics under plain unit
  strings ("Nmm", "W"); a channel whose unit does not say "/kg" and whose typical level (median
  of the largest component) is impossible per kg is absolute: divided by the body mass, or
  refused (all NaN) when the mass is unknown. Never decided from another channel;
- frames beyond the physical limit of the kind (angles beyond ±180°, hip moments beyond
  5 N·m/kg, ...) are artefacts -> NaN over those frames.
What was chosen and done per channel is in :attr:`C3DTrial.channels` and :attr:`C3DTrial.notes`.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import ezc3d
import numpy as np

from .naming import ModelOutputLabel, label_preference, parse_model_output_label
from .trial_h5 import EVENT_FOOT_OFF, EVENT_FOOT_STRIKE, JOINTS

SIDE_PREFIX = ("L", "R")
_ANGLE_SCALE = {"deg": np.pi / 180.0, "degree": np.pi / 180.0, "degrees": np.pi / 180.0,
                "rad": 1.0, "radian": 1.0, "radians": 1.0}
_MOMENT_SCALE = {"nmm": 1e-3, "nm": 1.0, "knm": 1e3}
_POWER_SCALE = {"mw": 1e-3, "w": 1.0, "kw": 1e3}
_FORCE_SCALE = {"n": 1.0, "kn": 1e3, "mn": 1e-3}
_DISTANCE_SCALE = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}
# Per kind (SI, per kg): the largest physically possible value of any component, and the
# highest typical level (median over frames of the largest component) of a per-kg channel in
# walking; a level above it can only be an absolute quantity.
PLAUSIBLE_LIMIT = {"angle": np.pi, "moment": 5.0, "power": 25.0, "force": 60.0}
PER_KG_TYPICAL_MAX = {"moment": 2.5, "power": 5.0, "force": 30.0}


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
class ChannelReport:
    """What was read and done for one model output of one side (e.g. ``LHipMoment``)."""

    joint: str
    kind: str
    side: int
    label: str
    candidates: list[str]
    unit: str
    scale: float
    normalisation: str = ""
    gap_frames: int = 0
    artefact_frames: int = 0
    refused: str = ""

    def summary(self) -> str:
        """One line for reports: label, unit and every change made to the values."""
        parts = [f"from {self.label!r}"]
        if len(self.candidates) > 1:
            parts.append(f"(candidates {self.candidates})")
        parts.append(f"unit {self.unit!r} x{self.scale:g}")
        if self.normalisation:
            parts.append(self.normalisation)
        if self.gap_frames:
            parts.append(f"{self.gap_frames} all-zero frames -> NaN (gaps)")
        if self.artefact_frames:
            parts.append(f"{self.artefact_frames} implausible frames -> NaN (artefact)")
        if self.refused:
            parts.append(f"REFUSED: {self.refused}")
        return " ".join(parts)


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
    body_mass_source: str
    subject: str
    units: dict[str, str]
    analog_rate_hz: float
    analog_labels: list[str]
    analogs: np.ndarray
    analog_units: list[str]
    channels: dict[str, ChannelReport] = field(default_factory=dict)
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
    key = re.sub(r"[\s.·*]", "", unit.lower()).split("/")[0]
    if key not in table:
        raise C3DError(f"{path}: POINT:{name} is {unit!r}, not one of {sorted(table)}")
    return unit, table[key]


def _choose_labels(labels: list[str], points: np.ndarray, preferred_suffixes: tuple[str, ...]
                   ) -> dict[tuple[str, str, int], list[ModelOutputLabel]]:
    """(joint, kind, side) -> matching labels, best first (:func:`naming.label_preference`).

    A label holds data where some frame is finite and not the all-zero gap fill.
    """
    found: dict[tuple[str, str, int], list[ModelOutputLabel]] = {}
    for column, raw in enumerate(labels):
        parsed = parse_model_output_label(raw, column)
        if parsed is not None:
            found.setdefault((parsed.joint, parsed.kind, parsed.side), []).append(parsed)

    def has_data(column: int) -> bool:
        values = points[:3, column, :]
        return bool(np.any(np.all(np.isfinite(values), axis=0) & np.any(values != 0, axis=0)))

    for candidates in found.values():
        candidates.sort(key=lambda c: label_preference(c, preferred_suffixes, has_data(c.column)))
    return found


def _per_kg_unit(unit: str) -> bool:
    return "/kg" in re.sub(r"\s", "", unit.lower())


def calibrate_channel(values: np.ndarray, kind: str, unit: str, scale: float,
                      body_mass_kg: float | None, report: ChannelReport) -> np.ndarray:
    """One side of one model output (N, 3) in file units -> SI per kg, gaps and artefacts NaN.

    Fills ``report`` with what was done; a refused channel comes back all NaN.
    """
    values = np.array(values, dtype=np.float64) * scale
    gaps = np.all(values == 0.0, axis=1)
    values[gaps] = np.nan
    report.gap_frames = int(gaps.sum())
    if not np.any(np.isfinite(values)):
        return values
    if kind != "angle":
        measured = values[np.any(np.isfinite(values), axis=1)]
        level = float(np.median(np.nanmax(np.abs(measured), axis=1)))
        typical = PER_KG_TYPICAL_MAX[kind]
        if _per_kg_unit(unit):
            report.normalisation = "per kg (unit says so)"
        elif level <= typical:
            report.normalisation = "per kg as written (Plug-in Gait)"
        elif body_mass_kg is None:
            report.refused = (f"absolute values (typical {level:.3g} per kg is impossible) "
                              "and body mass unknown (no PROCESSING:Bodymass, no option)")
            return np.full_like(values, np.nan)
        elif level / body_mass_kg > typical:
            report.refused = (f"typical level {level:.3g} is impossible per kg and still "
                              f"{level / body_mass_kg:.3g} after dividing by {body_mass_kg} kg")
            return np.full_like(values, np.nan)
        else:
            values /= body_mass_kg
            report.normalisation = (f"absolute (typical {level:.3g}), divided by body mass "
                                    f"{body_mass_kg:g} kg")
    with np.errstate(invalid="ignore"):
        bad = np.any(np.abs(values) > PLAUSIBLE_LIMIT[kind], axis=1)
    values[bad] = np.nan
    report.artefact_frames = int(bad.sum())
    return values


def _model_outputs(points: np.ndarray, found: dict, kind: str, unit: str, scale: float,
                   body_mass_kg: float | None) -> tuple[dict[str, np.ndarray], dict]:
    """{joint: (N, 2, 3)} for one kind (sides without a label are NaN) and channel reports."""
    series, reports = {}, {}
    for joint in JOINTS:
        sides = []
        for side in (0, 1):
            candidates = found.get((joint, kind, side), [])
            if not candidates:
                sides.append(None)
                continue
            best = candidates[0]
            report = ChannelReport(joint, kind, side, best.label,
                                   [c.label for c in candidates], unit, scale)
            sides.append(calibrate_channel(points[:3, best.column, :].T, kind, unit, scale,
                                           body_mass_kg, report))
            reports[best.name] = report
        if all(s is None for s in sides):
            continue
        filled = [np.full((points.shape[2], 3), np.nan) if s is None else s for s in sides]
        series[joint] = np.stack(filled, axis=1)
    return series, reports


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


def _body_mass(params: dict, option_kg: float | None) -> tuple[float | None, str]:
    """PROCESSING:Bodymass, else the caller's value, else unknown (None)."""
    mass = _param(params, "PROCESSING", "Bodymass")
    if mass is not None and len(mass) and float(np.atleast_1d(mass)[0]) > 0:
        return float(np.atleast_1d(mass)[0]), "c3d PROCESSING:Bodymass"
    if option_kg is not None and np.isfinite(option_kg) and option_kg > 0:
        return float(option_kg), "given by the user"
    return None, "unknown"


def read_c3d(path: str | Path, body_mass_kg: float | None = None,
             label_suffixes: tuple[str, ...] = ()) -> C3DTrial:
    """Read one Plug-in Gait c3d file; raise :class:`C3DError` naming the file on bad input.

    ``body_mass_kg`` is used only when the file has no PROCESSING:Bodymass. ``label_suffixes``
    are model-output label suffixes preferred over the plain label, in order (``_CGM_2.4``).
    """
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
    labels = labels[: points.shape[1]]
    units = {}
    units["angle"], angle_scale = _unit(params, "ANGLE_UNITS", "deg", _ANGLE_SCALE, path)
    units["moment"], moment_scale = _unit(params, "MOMENT_UNITS", "Nmm", _MOMENT_SCALE, path)
    units["power"], power_scale = _unit(params, "POWER_UNITS", "W", _POWER_SCALE, path)
    units["force"], force_scale = _unit(params, "FORCE_UNITS", "N", _FORCE_SCALE, path)
    units["distance"], _ = _unit(params, "UNITS", "mm", _DISTANCE_SCALE, path)
    body_mass, mass_source = _body_mass(params, body_mass_kg)

    found = _choose_labels(labels, points, tuple(label_suffixes))
    if not found.get(("hip", "angle", 0)) and not found.get(("hip", "angle", 1)):
        hip_labels = [lab for lab in labels if "hip" in lab.lower()]
        listed = (f"hip-related labels found: {hip_labels[:12]}" if hip_labels
                  else f"no label mentions 'hip' ({len(labels)} labels, e.g. {labels[:6]})")
        raise C3DError(f"{path}: no Plug-in Gait hip angles (expected <prefix>LHipAngles"
                       f"<suffix> or RHipAngles...); {listed}")
    outputs, channels = {}, {}
    for kind, scale in (("angle", angle_scale), ("moment", moment_scale),
                        ("power", power_scale), ("force", force_scale)):
        outputs[kind], reports = _model_outputs(points, found, kind, units[kind], scale,
                                                body_mass)
        channels.update(reports)
    notes = [f"{name}: {report.summary()}" for name, report in channels.items()
             if "Hip" in name or report.refused or report.normalisation.startswith("absolute")
             or report.artefact_frames]

    analogs = np.asarray(c3d["data"]["analogs"], dtype=np.float64)
    analogs = analogs[0].T if analogs.size else np.zeros((0, 0))
    analog_labels = list(_param(params, "ANALOG", "LABELS", []) or [])
    manufacturer = params.get("MANUFACTURER", {})
    synthetic = "synthetic" in " ".join(
        str(v) for v in (manufacturer.get("SOFTWARE", {}).get("value") or [])).lower()
    subjects = [str(n).strip() for n in (_param(params, "SUBJECTS", "NAMES", []) or [])]
    return C3DTrial(
        path=path, point_rate_hz=rate, first_frame=first_frame, n_frames=n_frames,
        angles_rad=outputs["angle"], moments_nm_per_kg=outputs["moment"],
        powers_w_per_kg=outputs["power"], forces_n_per_kg=outputs["force"],
        events=_events(params, rate, first_frame, n_frames, path), body_mass_kg=body_mass,
        body_mass_source=mass_source, subject=subjects[0] if len(subjects) == 1 else "",
        units=units, analog_rate_hz=float(c3d["header"]["analogs"]["frame_rate"]),
        analog_labels=analog_labels[: analogs.shape[1]] if analogs.size else [],
        analogs=analogs, analog_units=list(_param(params, "ANALOG", "UNITS", []) or []),
        channels=channels, notes=notes, synthetic=synthetic,
    )
