"""Windowed sEMG and A-mode ultrasound (AUS) features aligned to the 100 Hz kinematics.

Every feature window ends at a kinematic sample (time ``k / 100`` s) and looks only backwards,
so a window's features never use data recorded after the angle it is paired with. The same
window ends serve both modalities, which keeps sEMG, AUS and targets row-aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

EMG_FEATURE_NAMES = ("mav", "rms", "wl", "zc", "ssc")


@dataclass(frozen=True)
class WindowSpec:
    """Where feature windows sit on the kinematic time base.

    ``length_s`` is the span of signal each window summarises; ``stride`` is the number of
    kinematic samples between consecutive window ends (1 = one row per 100 Hz sample).
    """

    length_s: float = 0.2
    stride: int = 5
    kinematics_rate_hz: float = 100.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.length_s) and self.length_s > 0):
            raise ValueError(f"window length must be positive seconds, got {self.length_s}")
        if int(self.stride) != self.stride or self.stride < 1:
            raise ValueError(f"window stride must be a positive integer, got {self.stride}")
        if not (np.isfinite(self.kinematics_rate_hz) and self.kinematics_rate_hz > 0):
            raise ValueError(f"kinematics rate must be positive, got {self.kinematics_rate_hz}")

    def window_ends(self, n_kinematic_samples: int) -> np.ndarray:
        """Kinematic sample indices at which windows end (the first full window onwards)."""
        first = int(np.ceil(self.length_s * self.kinematics_rate_hz)) - 1
        return np.arange(max(first, 0), n_kinematic_samples, self.stride, dtype=np.int64)


@dataclass(frozen=True)
class EmgFilterSpec:
    """Conditioning applied to raw sEMG before the time-domain features.

    Band-pass 20-450 Hz removes motion artefact and out-of-band noise (SENIAM practice); the
    notch removes mains interference (50 Hz where K2MUSE was recorded). ``zc_threshold_uv``
    keeps noise-level wiggles from counting as zero crossings or slope sign changes.
    """

    band_hz: tuple[float, float] = (20.0, 450.0)
    notch_hz: float | None = 50.0
    notch_q: float = 30.0
    order: int = 4
    zero_phase: bool = True
    zc_threshold_uv: float = 1.0


def filter_emg(emg_uv: np.ndarray, rate_hz: float, spec: EmgFilterSpec) -> np.ndarray:
    """Band-pass and notch filter sEMG (samples x channels); NaN samples become zero first."""
    emg = np.asarray(emg_uv, dtype=np.float64)
    if emg.ndim != 2:
        raise ValueError(f"sEMG must be samples x channels, got shape {emg.shape}")
    low, high = spec.band_hz
    nyquist = rate_hz / 2.0
    if not 0 < low < high < nyquist:
        raise ValueError(f"sEMG band {spec.band_hz} Hz does not fit below Nyquist ({nyquist} Hz)")
    emg = np.nan_to_num(emg - np.nanmean(emg, axis=0), nan=0.0)
    sos = signal.butter(spec.order, (low, high), btype="bandpass", fs=rate_hz, output="sos")
    if spec.notch_hz is not None and 0 < spec.notch_hz < nyquist:
        b, a = signal.iirnotch(spec.notch_hz, spec.notch_q, fs=rate_hz)
        sos = np.vstack([sos, signal.tf2sos(b, a)])
    padlen_ok = emg.shape[0] > 3 * (2 * sos.shape[0] + 1)
    if spec.zero_phase and padlen_ok:
        return signal.sosfiltfilt(sos, emg, axis=0)
    return signal.sosfilt(sos, emg, axis=0)


def emg_window_features(
    emg_filtered: np.ndarray,
    rate_hz: float,
    window_end_times_s: np.ndarray,
    length_s: float,
    zc_threshold_uv: float,
) -> np.ndarray:
    """MAV, RMS, WL, ZC and SSC of each channel over windows ending at the given times.

    Returns (windows, channels * 5), grouped by channel then feature. A window that would
    reach past either end of the recording is NaN, so missing sEMG never looks like silence.
    """
    n_samples, n_channels = emg_filtered.shape
    length = max(int(round(length_s * rate_hz)), 2)
    ends = np.floor(np.asarray(window_end_times_s) * rate_hz + 1e-9).astype(np.int64)
    features = np.full((ends.size, n_channels, len(EMG_FEATURE_NAMES)), np.nan)
    inside = (ends - length + 1 >= 0) & (ends < n_samples)
    if inside.any():
        index = ends[inside, None] + np.arange(-length + 1, 1)[None, :]
        win = emg_filtered[index]  # (windows, length, channels)
        diff = np.diff(win, axis=1)
        left, mid, right = win[:, :-2], win[:, 1:-1], win[:, 2:]
        threshold = zc_threshold_uv
        zero_crossings = (win[:, :-1] * win[:, 1:] < 0) & (np.abs(diff) >= threshold)
        slope_changes = ((mid - left) * (mid - right) > 0) & (
            (np.abs(mid - left) >= threshold) | (np.abs(mid - right) >= threshold)
        )
        features[inside] = np.stack(
            [
                np.mean(np.abs(win), axis=1),
                np.sqrt(np.mean(win**2, axis=1)),
                np.sum(np.abs(diff), axis=1),
                np.sum(zero_crossings, axis=1),
                np.sum(slope_changes, axis=1),
            ],
            axis=-1,
        )
    return features.reshape(ends.size, n_channels * len(EMG_FEATURE_NAMES))


def aus_frame_features(frames: np.ndarray, depth_bins: int) -> np.ndarray:
    """Echo-envelope features of each AUS frame and channel.

    The envelope (magnitude of the analytic signal of the de-meaned RF line) traces tissue
    boundaries along depth; muscle contraction moves and brightens them. Per channel we keep
    the log mean envelope in ``depth_bins`` equal depth bins plus the envelope-weighted mean
    depth (as a fraction of the line). Returns (frames, channels * (depth_bins + 1)).
    """
    rf = np.asarray(frames, dtype=np.float64)
    if rf.ndim != 3:
        raise ValueError(f"AUS frames must be frames x channels x samples, got shape {rf.shape}")
    n_frames, n_channels, n_depth = rf.shape
    if depth_bins < 1 or depth_bins > n_depth:
        raise ValueError(f"AUS depth bins must be in 1..{n_depth}, got {depth_bins}")
    rf = np.nan_to_num(rf - np.nanmean(rf, axis=2, keepdims=True), nan=0.0)
    envelope = np.abs(signal.hilbert(rf, axis=2))
    edges = np.linspace(0, n_depth, depth_bins + 1).astype(int)
    binned = np.add.reduceat(envelope, edges[:-1], axis=2) / np.diff(edges)
    depth = (np.arange(n_depth) + 0.5) / n_depth
    total = envelope.sum(axis=2)
    centroid = np.divide(
        (envelope * depth).sum(axis=2), total, out=np.full_like(total, np.nan), where=total > 0
    )
    per_channel = np.concatenate([np.log1p(binned), centroid[..., None]], axis=2)
    return per_channel.reshape(n_frames, n_channels * (depth_bins + 1))


def aus_window_features(
    frame_features: np.ndarray,
    frame_rate_hz: float,
    window_end_times_s: np.ndarray,
    length_s: float,
) -> np.ndarray:
    """Mean AUS frame features over each window, causal and sample-and-hold.

    Frame ``f`` is acquired at ``f / frame_rate_hz``. A window averages the frames inside
    (end - length, end]; a window shorter than the frame interval holds the latest frame.
    Windows ending before the first frame or after the last frame's interval are NaN (K2MUSE
    has trials with too few AUS frames; those rows must not be invented).
    """
    n_frames = frame_features.shape[0]
    ends = np.asarray(window_end_times_s, dtype=np.float64)
    out = np.full((ends.size, frame_features.shape[1]), np.nan)
    if n_frames == 0:
        return out
    eps = 1e-9
    last = np.floor(ends * frame_rate_hz + eps).astype(np.int64)
    first = np.floor((ends - length_s) * frame_rate_hz + eps).astype(np.int64) + 1
    first = np.minimum(first, last)
    covered = (last >= 0) & (last < n_frames)
    first = np.maximum(first, 0)
    cumulative = np.vstack([np.zeros((1, frame_features.shape[1])), np.cumsum(frame_features, 0)])
    rows = np.flatnonzero(covered)
    counts = (last[rows] - first[rows] + 1)[:, None]
    out[rows] = (cumulative[last[rows] + 1] - cumulative[first[rows]]) / counts
    return out
