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
_FIRST_NUMERIC_LINE = re.compile(rb"^[ \t]*[-+]?[0-9]", re.MULTILINE)
_SEPARATOR, _DIGIT, _SIGN, _OTHER = range(4)
_BYTE_KIND = np.full(256, _OTHER, np.uint8)
_BYTE_KIND[list(b" \t\r\n,;")] = _SEPARATOR
_BYTE_KIND[list(b"0123456789")] = _DIGIT
_BYTE_KIND[list(b"+-")] = _SIGN
_MAX_DIGITS = 15  # exact in float64


class AUSFileError(ValueError):
    """An ELONXI .txt file that is not a whole number of 1000-sample frames."""


def read_aus_channel(path: str | Path) -> np.ndarray:
    """Read one channel file as (frames, 1000) float32."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AUSFileError(f"{path}: cannot read ({exc.strerror})") from None
    values = _parse_integers(data)
    if values is None:
        values = _parse_any_numbers(path, data.decode("utf-8", errors="replace"))
    if values.size % SAMPLES_PER_FRAME:
        raise AUSFileError(f"{path}: {values.size} samples is not a whole number of "
                           f"{SAMPLES_PER_FRAME}-sample frames")
    return values.reshape(-1, SAMPLES_PER_FRAME)


def _parse_any_numbers(path: Path, text: str) -> np.ndarray:
    """Samples in any syntax numpy reads (decimals, exponents); one Python string per sample."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _NUMBER_START.match(line)), None)
    if start is None:
        raise AUSFileError(f"{path}: no numeric samples (empty file or header only)")
    body = "\n".join(lines[start:])
    body = re.sub(r"[,;\t]", " ", body)
    tokens = body.split()
    try:
        return np.array(tokens, dtype=np.float32)
    except ValueError:
        bad = next(t for t in tokens if not _is_number(t))
        raise AUSFileError(f"{path}: non-numeric sample {bad!r} after the header") from None


def _is_number(token: str) -> bool:
    try:
        np.array([token], dtype=np.float32)
    except ValueError:
        return False
    return True


def _parse_integers(data: bytes) -> np.ndarray | None:
    """Integer samples after the header, converted with array arithmetic on the digits.

    The ELONXI exports hold integers only; this is ~10x faster than one Python string per
    sample (or np.loadtxt). Returns None for anything else (decimals, odd header line breaks,
    malformed tokens), which the general parser then reads or reports.
    """
    match = _FIRST_NUMERIC_LINE.search(data)
    if match is None:
        return None
    header = data[:match.start()].decode("utf-8", errors="replace").splitlines()
    if len(header) != data.count(b"\n", 0, match.start()) or any(
            _NUMBER_START.match(line) for line in header):
        return None  # the general parser's str.splitlines would find another first line
    body = np.frombuffer(data, np.uint8)[match.start():]
    kind = _BYTE_KIND[body]
    if kind.max() == _OTHER:
        return None
    edges = np.flatnonzero(np.diff(kind != _SEPARATOR, prepend=False, append=False))
    starts, ends = edges[::2], edges[1::2]
    lengths = ends - starts
    width = int(lengths.max())
    if width > _MAX_DIGITS or np.count_nonzero(kind == _SIGN) != np.count_nonzero(
            (kind[starts] == _SIGN) & (lengths > 1)):
        return None  # too long for float64, a sign inside a token, or a lone sign
    # Right-align each token in a row of ``width`` bytes ('0'-padded); signs count as '0'.
    slots = np.repeat(np.arange(1, starts.size + 1) * width - ends, lengths)
    chars = np.flatnonzero(kind != _SEPARATOR)
    table = np.full(starts.size * width, ord("0"), np.uint8)
    table[slots + chars] = body[chars]
    digits = np.maximum(table.reshape(-1, width), ord("0")) - ord("0")
    magnitude = np.zeros(starts.size, np.int64)
    for column in digits.T:  # a few columns; a BLAS product would start threads for this
        magnitude = magnitude * 10 + column
    values = magnitude.astype(np.float64)
    values[body[starts] == ord("-")] *= -1.0  # "-0" stays -0.0, as the general parser reads it
    return values.astype(np.float32)


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
