"""ELONXI A-mode ultrasound (AUS) text files: one channel per file, 1000 samples per frame.

The layout is not documented, so it is sniffed: leading non-numeric header lines are skipped,
the delimiter is whatever separates numbers (tab, comma, semicolon, spaces), and the values may
be one frame per line or one value per line. The total must be a whole number of frames.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SAMPLES_PER_FRAME = 1000
N_CHANNELS = 4
_NUMBER_START = re.compile(r"\s*[-+]?(\d|\.\d)")


class AUSFileError(ValueError):
    """An ELONXI .txt file that is not a whole number of 1000-sample frames."""


def read_aus_channel(path: str | Path) -> np.ndarray:
    """Read one channel file as (frames, 1000) float32."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise AUSFileError(f"{path}: cannot read ({exc.strerror})") from None
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _NUMBER_START.match(line)), None)
    if start is None:
        raise AUSFileError(f"{path}: no numeric samples (empty file or header only)")
    body = "\n".join(lines[start:])
    body = re.sub(r"[,;\t]", " ", body)
    tokens = body.split()
    try:
        values = np.array(tokens, dtype=np.float32)
    except ValueError:
        bad = next(t for t in tokens if not re.fullmatch(r"[-+]?[\d.]+(?:[eE][-+]?\d+)?", t))
        raise AUSFileError(f"{path}: non-numeric sample {bad!r} after the header") from None
    if values.size % SAMPLES_PER_FRAME:
        raise AUSFileError(f"{path}: {values.size} samples is not a whole number of "
                           f"{SAMPLES_PER_FRAME}-sample frames")
    return values.reshape(-1, SAMPLES_PER_FRAME)


def merge_aus_channels(paths_by_channel: dict[int, Path]) -> tuple[np.ndarray, list[str]]:
    """Merge channel files into (frames, 4, 1000); frames beyond the shortest are dropped.

    Raises :class:`AUSFileError` when a channel is missing.
    """
    missing = [ch for ch in range(1, N_CHANNELS + 1) if ch not in paths_by_channel]
    if missing:
        raise AUSFileError(f"{next(iter(paths_by_channel.values()), 'AUS')}: channel(s) "
                           f"{missing} missing")
    channels = [read_aus_channel(paths_by_channel[ch]) for ch in range(1, N_CHANNELS + 1)]
    n = min(c.shape[0] for c in channels)
    return (np.stack([c[:n] for c in channels], axis=1),
            [f"Ch{ch}" for ch in range(1, N_CHANNELS + 1)])


def format_aus_channel(frames: np.ndarray) -> str:
    """Text of one channel file (one frame per line, tab-separated integers)."""
    values = np.clip(np.rint(frames), -32768, 32767).astype(np.int64)
    offset = -int(values.min(initial=0))
    table = np.array([str(v - offset) for v in range(int(values.max(initial=0)) + offset + 1)],
                     dtype=object)
    words = table[values + offset]
    return "\n".join("\t".join(row) for row in words) + "\n"
