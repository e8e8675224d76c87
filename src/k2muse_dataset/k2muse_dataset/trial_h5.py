"""Trial-level HDF5 files: the contract between k2muse_dataset and its readers.

Layout (docs/architecture.md section 1): continuous kinematics/kinetics at 100 Hz with time 0
at the Lock Lab trigger, gait events, accepted strides, optional sEMG and AUS. Missing
modalities are absent groups, never empty arrays.
"""

from __future__ import annotations

import functools
import io
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np

from .atomic import write_bytes_atomic

FORMAT = "k2muse-trial"
FORMAT_VERSION = 1
JOINTS = ("hip", "knee", "ankle")
SIDES = ("left", "right")
EVENT_FOOT_STRIKE = 0
EVENT_FOOT_OFF = 1
EMG_RATE_HZ = 2000.0
AUS_FRAME_RATE_HZ = 20.0
# Plausibility limits of the contract: values beyond them are corrupt files, not gait.
MAX_ABS_ANGLE_RAD = 2.0 * math.pi
MAX_ABS_MOMENT_NM_PER_KG = 50.0
MAX_ABS_POWER_W_PER_KG = 500.0
BODY_MASS_RANGE_KG = (10.0, 500.0)  # NaN means "unknown" and is valid
MAX_SAMPLE_RATE_HZ = 100_000.0
RATE_TOLERANCE = 0.01  # relative disagreement allowed between sample_rate_hz and time_s


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
        """``LG_0``, ``AS_5``, ``DS_10``; the mode alone when the incline is unknown (NaN)."""
        return _mode_from_incline(self.mode, self.incline_deg)

    @property
    def n_samples(self) -> int:
        """Number of kinematic samples."""
        return int(self.time_s.shape[0])

    def validate(self) -> None:
        """Raise :class:`TrialFileError` when the trial breaks the contract.

        Shapes, dtypes, a finite strictly increasing time axis whose spacing agrees with a
        positive sample rate, event and stride indices inside the trial, finite or NaN (gap)
        values within plausible limits, body mass plausible or NaN (unknown).
        """
        n = self.n_samples
        _check_time(self.time_s, self.sample_rate_hz)
        for name, value in (("incline_deg", self.incline_deg), ("speed_m_s", self.speed_m_s)):
            if math.isinf(value):  # NaN means "unknown" (imported trials) and is valid
                raise TrialFileError(f"{name} is {value}, expected a finite number or NaN")
        low, high = BODY_MASS_RANGE_KG
        if not (math.isnan(self.body_mass_kg) or low <= self.body_mass_kg <= high):
            raise TrialFileError(f"body_mass_kg {self.body_mass_kg:g} outside {low:g}..{high:g} "
                                 "kg (store NaN when unknown)")
        for group, unit, limit in ((self.angles_rad, "rad", MAX_ABS_ANGLE_RAD),
                                   (self.moments_nm_per_kg, "N*m/kg", MAX_ABS_MOMENT_NM_PER_KG),
                                   (self.powers_w_per_kg or {}, "W/kg", MAX_ABS_POWER_W_PER_KG)):
            for joint, values in group.items():
                _check_array(f"{joint} ({unit})", values, (n, 2, 3), limit)
        _check_events(self, n)
        for side in SIDES:
            stride = self.strides.get(side, np.zeros((0, 2), np.int64))
            if stride.ndim != 2 or stride.shape[1] != 2:
                raise TrialFileError(f"strides/{side}: shape {stride.shape}, expected (S, 2)")
            _require_integer(f"strides/{side}", stride)
            if stride.size and not (np.all(stride[:, 0] >= 0) and np.all(stride[:, 1] < n)
                                    and np.all(stride[:, 0] < stride[:, 1])):
                raise TrialFileError(f"strides/{side}: (start, end) must satisfy 0 <= start < "
                                     f"end < {n}")
        if self.emg_uv is not None:
            _check_array("emg", self.emg_uv, (None, 13), math.inf, np.number)
        if self.aus_frames is not None:
            _check_array("aus", self.aus_frames, (None, 4, 1000), math.inf, np.number)


def _check_time(time_s: np.ndarray, rate_hz: float) -> None:
    if not isinstance(time_s, np.ndarray) or time_s.ndim != 1 or time_s.size == 0:
        raise TrialFileError(f"time_s: shape {np.shape(time_s)}, expected (N,) with N >= 1")
    if not np.issubdtype(time_s.dtype, np.floating):
        raise TrialFileError(f"time_s: dtype {time_s.dtype}, expected floating point")
    if not np.all(np.isfinite(time_s)):
        raise TrialFileError("time_s holds non-finite values")
    steps = np.diff(time_s)
    if np.any(steps <= 0):
        raise TrialFileError(f"time_s is not strictly increasing (at sample "
                             f"{int(np.argmax(steps <= 0)) + 1})")
    if not (isinstance(rate_hz, (int, float)) and math.isfinite(rate_hz)
            and 0 < rate_hz <= MAX_SAMPLE_RATE_HZ):
        raise TrialFileError(f"sample_rate_hz is {rate_hz}, expected 0 < rate <= "
                             f"{MAX_SAMPLE_RATE_HZ:g}")
    if steps.size and abs(float(np.median(steps)) * rate_hz - 1.0) > RATE_TOLERANCE:
        raise TrialFileError(f"sample_rate_hz {rate_hz:g} disagrees with time_s (median step "
                             f"{float(np.median(steps)):g} s)")


def _check_array(name: str, values: np.ndarray, shape: tuple[int | None, ...],
                 limit: float, kind: type = np.floating) -> None:
    """Dtype of ``kind``, shape (None: any length), no infinities, |finite values| <= limit."""
    if not isinstance(values, np.ndarray) or values.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(values.shape, shape,
                                                                  strict=True)):
        expected = ", ".join("N" if want is None else str(want) for want in shape)
        raise TrialFileError(f"{name}: shape {np.shape(values)}, expected ({expected})")
    if not np.issubdtype(values.dtype, kind) or np.issubdtype(values.dtype, np.complexfloating):
        raise TrialFileError(f"{name}: dtype {values.dtype}, expected {kind.__name__}")
    if np.any(np.isinf(values)):
        raise TrialFileError(f"{name}: holds infinite values (NaN marks gaps)")
    if math.isfinite(limit) and np.nanmax(np.abs(values), initial=0.0) > limit:
        raise TrialFileError(f"{name}: |value| up to {np.nanmax(np.abs(values)):.3g}, beyond "
                             f"the plausible {limit:g}")


def _require_integer(name: str, values: np.ndarray) -> None:
    if not np.issubdtype(values.dtype, np.integer):
        raise TrialFileError(f"{name}: dtype {values.dtype}, expected integers")


def _check_events(trial: Trial, n: int) -> None:
    arrays = {"time_s": trial.event_time_s, "frame": trial.event_frame,
              "side": trial.event_side, "kind": trial.event_kind}
    shapes = {np.shape(a) for a in arrays.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 1:
        raise TrialFileError(f"event arrays must be 1-D of one length, got shapes {shapes}")
    if not (np.issubdtype(trial.event_time_s.dtype, np.floating)
            and np.all(np.isfinite(trial.event_time_s))):
        raise TrialFileError("events/time_s must be finite floating-point seconds")
    for name in ("frame", "side", "kind"):
        _require_integer(f"events/{name}", arrays[name])
    if trial.event_frame.size and not (trial.event_frame.min() >= 0
                                       and trial.event_frame.max() < n):
        raise TrialFileError(f"events/frame outside 0..{n - 1}")
    for name in ("side", "kind"):
        if not np.all(np.isin(arrays[name], (0, 1))):
            raise TrialFileError(f"events/{name} must be 0 or 1")


def _mode_from_incline(mode: str, incline_deg: float) -> str:
    if math.isnan(incline_deg):
        return mode
    return f"{mode}_{abs(round(incline_deg))}"


def stored_form(trial: Trial) -> Trial:
    """``trial`` as :func:`write_trial_h5` stores it and :func:`read_trial_h5` reads it back.

    Stored dtypes (float64 curves and times, int64 frames, uint8 side/kind, float32 sEMG/AUS),
    events in time order, both sides' strides as (S, 2); curves and streams already in that
    form are shared, not copied. Lets a writer use the trial instead of reading its file back.
    """
    order = np.argsort(trial.event_time_s, kind="stable")
    curves = [{joint: np.asarray(values, np.float64) for joint, values in series.items()}
              for series in (trial.angles_rad, trial.moments_nm_per_kg,
                             trial.powers_w_per_kg or {})]
    return replace(
        trial, angles_rad=curves[0], moments_nm_per_kg=curves[1], powers_w_per_kg=curves[2] or None,
        time_s=np.asarray(trial.time_s, np.float64),
        event_time_s=np.asarray(trial.event_time_s, np.float64)[order],
        event_frame=np.asarray(trial.event_frame, np.int64)[order],
        event_side=np.asarray(trial.event_side, np.uint8)[order],
        event_kind=np.asarray(trial.event_kind, np.uint8)[order],
        strides={side: np.asarray(trial.strides.get(side, np.zeros((0, 2))),
                                  np.int64).reshape(-1, 2) for side in SIDES},
        emg_uv=None if trial.emg_uv is None else np.asarray(trial.emg_uv, np.float32),
        emg_channel_names=None if trial.emg_uv is None else list(trial.emg_channel_names or []),
        aus_frames=None if trial.aus_frames is None else np.asarray(trial.aus_frames,
                                                                    np.float32),
        aus_channel_names=None if trial.aus_frames is None else
        list(trial.aus_channel_names or []),
        source_files=list(trial.source_files))


def write_trial_h5(path: str | Path, trial: Trial,
                   dataset_attrs: Mapping[str, Mapping[str, object]] | None = None,
                   root_attrs: Mapping[str, object] | None = None) -> Path:
    """Write ``trial`` atomically to ``path`` (parents created) and return the path.

    ``dataset_attrs`` (dataset path -> attributes; paths absent from the file are ignored) and
    ``root_attrs`` annotate the file in the same write.
    """
    trial.validate()
    trial = stored_form(trial)
    path = Path(path)
    # Built in memory and written with plain file I/O: a full disk is then an OSError
    # (ENOSPC) from write(), never a crash inside the HDF5 library while it closes the file.
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        _set_attrs(f, {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "participant": trial.participant, "condition": trial.condition,
            "mode": trial.mode, "incline_deg": float(trial.incline_deg),
            "mode_key": _mode_from_incline(trial.mode, trial.incline_deg),
            "speed_m_s": float(trial.speed_m_s), "trial": int(trial.trial),
            "body_mass_kg": float(trial.body_mass_kg), "synthetic": bool(trial.synthetic),
            "source_files": json.dumps(list(trial.source_files)),
        })
        kin = f.create_group("kinematics")
        kin.create_dataset("time_s", data=trial.time_s)
        kin.attrs["sample_rate_hz"] = float(trial.sample_rate_hz)
        for joint, values in trial.angles_rad.items():
            kin.create_dataset(f"{joint}_angle_rad", data=values)
        kinetics = f.create_group("kinetics")
        for joint, values in trial.moments_nm_per_kg.items():
            kinetics.create_dataset(f"{joint}_moment_nm_per_kg", data=values)
        for joint, values in (trial.powers_w_per_kg or {}).items():
            kinetics.create_dataset(f"{joint}_power_w_per_kg", data=values)
        events = f.create_group("events")
        events.create_dataset("time_s", data=trial.event_time_s)
        events.create_dataset("frame", data=trial.event_frame)
        events.create_dataset("side", data=trial.event_side)
        events.create_dataset("kind", data=trial.event_kind)
        strides = f.create_group("strides")
        for side in SIDES:
            strides.create_dataset(side, data=trial.strides[side])
        # sEMG and AUS are stored uncompressed: lzf+shuffle did not shrink float32 sEMG and
        # shrank AUS 3x, but took longer than all the rest of the work after the read
        # (bench/bench_dataset.py, issue #15).
        if trial.emg_uv is not None:
            emg = f.create_group("emg")
            emg.create_dataset("signals_uv", data=trial.emg_uv)
            emg.attrs["sample_rate_hz"] = EMG_RATE_HZ
            emg.attrs["channel_names"] = json.dumps(trial.emg_channel_names)
        if trial.aus_frames is not None:
            aus = f.create_group("aus")
            aus.create_dataset("frames", data=trial.aus_frames)
            aus.attrs["frame_rate_hz"] = AUS_FRAME_RATE_HZ
            aus.attrs["channel_names"] = json.dumps(trial.aus_channel_names)
        for dataset, attrs in (dataset_attrs or {}).items():
            if dataset in f:
                _set_attrs(f[dataset], attrs)
        _set_attrs(f, root_attrs or {})
    write_bytes_atomic(path, buffer.getbuffer())
    return path


_SCALAR_DTYPES = {str: h5py.string_dtype(), float: np.dtype(np.float64),
                  int: np.dtype(np.int64), bool: np.dtype(np.bool_)}
_SCALAR_SPACE = h5py.h5s.create(h5py.h5s.SCALAR)


def _set_attrs(obj: h5py.HLObject, attrs: Mapping[str, object]) -> None:
    """``obj.attrs.update(attrs)`` with the same stored types, ~15x faster for plain scalars.

    h5py's attribute writer checks, creates under a temporary name and renames each attribute;
    a trial file has ~160 of them, which was the costliest part of writing it.
    """
    for name, value in attrs.items():
        dtype = _SCALAR_DTYPES.get(type(value))
        if dtype is None or (type(value) is int and not -2**63 <= value < 2**63):
            obj.attrs[name] = value  # anything else: h5py decides, as before
            continue
        key = name.encode()
        if h5py.h5a.exists(obj.id, key):
            h5py.h5a.delete(obj.id, key)
        attr = h5py.h5a.create(obj.id, key, _file_type(dtype), _SCALAR_SPACE)
        attr.write(np.array(value, dtype=dtype), mtype=_memory_type(dtype))
        attr.close()


@functools.cache
def _file_type(dtype: np.dtype) -> h5py.h5t.TypeID:
    return h5py.h5t.py_create(dtype, logical=True)


@functools.cache
def _memory_type(dtype: np.dtype) -> h5py.h5t.TypeID:
    return h5py.h5t.py_create(dtype)


def _names(attr: object) -> list[str]:
    if isinstance(attr, bytes):
        attr = attr.decode()
    if isinstance(attr, str):
        return list(json.loads(attr)) if attr.startswith("[") else [attr]
    return [a.decode() if isinstance(a, bytes) else str(a) for a in np.atleast_1d(attr)]


def _attr(attrs: Mapping, name: str, kind: type) -> object:
    """A scalar attribute of the expected kind (str, float, int, bool), or TrialFileError."""
    value = attrs[name]
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    ok = {str: (str,), float: (int, float), int: (int,), bool: (bool, int)}[kind]
    if not isinstance(value, ok) or (kind in (int, float) and isinstance(value, bool)):
        raise TrialFileError(f"attribute {name} is {value!r} ({type(value).__name__}), "
                             f"expected {kind.__name__}")
    return kind(value)


def read_trial_h5(path: str | Path, load_emg: bool = True, load_aus: bool = True) -> Trial:
    """Read and validate a trial file; raise :class:`TrialFileError` naming the file if bad."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise TrialFileError(f"{path}: not an HDF5 file ({exc})") from None
    try:
        with f:
            trial = _read_open_file(f, load_emg, load_aus)
        trial.validate()
    except TrialFileError as exc:
        raise TrialFileError(f"{path}: {exc}") from None
    except KeyError as exc:
        raise TrialFileError(f"{path}: missing {exc}") from None
    except (OSError, TypeError, ValueError, AttributeError) as exc:
        raise TrialFileError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    return trial


def _read_open_file(f: h5py.File, load_emg: bool, load_aus: bool) -> Trial:
    if f.attrs.get("format") != FORMAT:
        raise TrialFileError(f"format attribute is {f.attrs.get('format')!r}, expected "
                             f"{FORMAT!r}")
    version = f.attrs.get("format_version")
    if isinstance(version, np.generic):
        version = version.item()
    if not isinstance(version, int) or isinstance(version, bool) or version != FORMAT_VERSION:
        raise TrialFileError(f"unsupported format_version {version!r} (this reader knows "
                             f"integer {FORMAT_VERSION})")
    kin, kinetics = f["kinematics"], f["kinetics"]
    angles = {j: kin[f"{j}_angle_rad"][()] for j in JOINTS if f"{j}_angle_rad" in kin}
    moments = {j: kinetics[f"{j}_moment_nm_per_kg"][()] for j in JOINTS
               if f"{j}_moment_nm_per_kg" in kinetics}
    powers = {j: kinetics[f"{j}_power_w_per_kg"][()] for j in JOINTS
              if f"{j}_power_w_per_kg" in kinetics}
    ev = f["events"]
    trial = Trial(
        participant=_attr(f.attrs, "participant", str),
        condition=_attr(f.attrs, "condition", str), mode=_attr(f.attrs, "mode", str),
        incline_deg=_attr(f.attrs, "incline_deg", float),
        speed_m_s=_attr(f.attrs, "speed_m_s", float), trial=_attr(f.attrs, "trial", int),
        body_mass_kg=_attr(f.attrs, "body_mass_kg", float),
        synthetic=_attr(f.attrs, "synthetic", bool),
        time_s=kin["time_s"][()], sample_rate_hz=_attr(kin.attrs, "sample_rate_hz", float),
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
    return trial


def iter_trial_files(root: str | Path) -> Iterator[Path]:
    """Yield every trial file under ``root`` (or ``root/trials``), sorted by path."""
    root = Path(root)
    if root.is_file():
        yield root
        return
    yield from sorted(p for p in root.rglob("*.h5") if not p.name.startswith("."))
