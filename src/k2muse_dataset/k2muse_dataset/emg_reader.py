"""Noraxon MR3 sEMG exports (.mat v5 or v7.3) with sniffed variable names.

The export's variable names are not documented. Accepted: a numeric matrix with 13 channel
columns (optionally plus a leading time column) or 13 equally long channel vectors; channel
names from a 13-entry cell/string variable; sample rate from a variable whose name mentions
rate/freq/fs, else from a time vector, else the documented 2000 Hz (noted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .mat_io import load_mat

N_EMG_CHANNELS = 13
DEFAULT_EMG_RATE_HZ = 2000.0
EMG_MUSCLES = ("R_TA", "R_MG", "R_LG", "R_SOL", "R_RF", "R_VL", "R_VM", "R_BF", "R_SEM",
               "L_TA", "L_LG", "L_RF", "L_BF")


class EMGFileError(ValueError):
    """A Noraxon file whose sEMG channels cannot be found."""


@dataclass
class EMGRecording:
    """sEMG samples (M, 13) in µV, 0 at the trigger."""

    path: Path
    signals_uv: np.ndarray
    channel_names: list[str]
    sample_rate_hz: float
    variables: list[str]
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False


def _is_time_name(name: str) -> bool:
    return bool(re.search(r"time|^t$", name, re.IGNORECASE))


def read_noraxon_mat(path: str | Path) -> EMGRecording:
    """Read a Noraxon export; raise :class:`EMGFileError` naming the file and its variables."""
    path = Path(path)
    variables = load_mat(path)
    names = sorted(variables)
    notes: list[str] = []
    numeric = {k: np.asarray(v, dtype=np.float64) for k, v in variables.items()
               if isinstance(v, np.ndarray) and v.dtype.kind in "fiu" and v.size > 1}
    signals = None
    for name, value in numeric.items():
        if value.ndim == 2 and _is_time_name(name) is False:
            matrix = value if value.shape[1] in (13, 14) else value.T
            if matrix.shape[1] == N_EMG_CHANNELS + 1:
                matrix = matrix[:, 1:]
                notes.append(f"{name}: first column taken as time")
            if matrix.shape[1] == N_EMG_CHANNELS and matrix.shape[0] > N_EMG_CHANNELS:
                signals = matrix
                break
    if signals is None:
        vectors = [(k, v) for k, v in numeric.items() if v.ndim == 1 and not _is_time_name(k)]
        lengths = {v.shape[0] for _, v in vectors}
        if len(vectors) == N_EMG_CHANNELS and len(lengths) == 1:
            signals = np.stack([v for _, v in vectors], axis=1)
            default_names = [k for k, _ in vectors]
        else:
            raise EMGFileError(f"{path}: no {N_EMG_CHANNELS}-channel sEMG data among variables "
                               f"{names}")
    else:
        default_names = list(EMG_MUSCLES)
    channel_names = default_names
    for value in variables.values():
        if isinstance(value, list) and len(value) == N_EMG_CHANNELS and all(
                isinstance(v, str) for v in value):
            channel_names = [str(v) for v in value]
    rate = None
    for name, value in variables.items():
        if re.search(r"rate|freq|^fs$", name, re.IGNORECASE) and np.size(value) == 1:
            rate = float(np.asarray(value).ravel()[0])
    if rate is None:
        time = next((v for k, v in numeric.items() if _is_time_name(k) and v.ndim == 1), None)
        if time is not None and time.size > 1:
            rate = float(round(1.0 / np.median(np.diff(time))))
        else:
            rate = DEFAULT_EMG_RATE_HZ
            notes.append(f"sample rate not in file; assumed {DEFAULT_EMG_RATE_HZ} Hz")
    if not rate > 0:
        raise EMGFileError(f"{path}: sample rate {rate} is not positive")
    synthetic = bool(np.any(np.asarray(variables.get("synthetic", 0))))
    return EMGRecording(path, signals.astype(np.float32), channel_names, rate, names, notes,
                        synthetic)
