"""ParticipantInformation.xlsx: anthropometrics per participant (column names sniffed)."""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl

from .naming import FileNameError, normalise_participant

_COLUMNS = {
    "mass_kg": re.compile(r"mass|weight", re.IGNORECASE),
    "height_m": re.compile(r"height|stature", re.IGNORECASE),
    "age_years": re.compile(r"age", re.IGNORECASE),
    "sex": re.compile(r"sex|gender", re.IGNORECASE),
    "leg_length_m": re.compile(r"leg", re.IGNORECASE),
}


class ParticipantFileError(ValueError):
    """A participant sheet without a recognisable header."""


def read_participant_info(path: str | Path) -> dict[str, dict[str, object]]:
    """Return ``{"P01": {"mass_kg": 70.0, "height_m": 1.75, ...}}`` from the first sheet.

    Heights given in cm (values > 3) are converted to m.
    """
    path = Path(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException
        raise ParticipantFileError(f"{path}: not a readable .xlsx file ({exc})") from None
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    for h, header in enumerate(rows):
        cells = [str(c or "").strip() for c in header]
        id_col = next((i for i, c in enumerate(cells)
                       if re.search(r"participant|subject|^id$|^no", c, re.IGNORECASE)), None)
        if id_col is None:
            continue
        columns = {}
        for key, pattern in _COLUMNS.items():
            hit = next((i for i, c in enumerate(cells) if i != id_col and pattern.search(c)), None)
            if hit is not None:
                columns[key] = hit
        info = {}
        for row in rows[h + 1:]:
            try:
                pid = normalise_participant(str(row[id_col]))
            except (FileNameError, IndexError):
                continue
            entry = {key: row[col] for key, col in columns.items() if col < len(row)}
            if isinstance(entry.get("height_m"), (int, float)) and entry["height_m"] > 3:
                entry["height_m"] = entry["height_m"] / 100.0
            info[pid] = entry
        return info
    raise ParticipantFileError(f"{path}: no header row with a participant/subject column")
