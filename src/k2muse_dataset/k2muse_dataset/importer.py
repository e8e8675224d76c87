"""``k2muse import``: any lab's Plug-in Gait walking c3d files -> trial HDF5 files.

File names are free. What a c3d file does not hold is never invented: participant, condition,
walking mode, incline, speed and trial number come from options (same for every file) or a
sidecar table (one row per file), else they are stored as unknown (docs/architecture.md
section 1): text "unknown", incline/speed NaN, trial 0, body mass NaN. The participant defaults
to the file's SUBJECTS:NAMES (one subject); the body mass is PROCESSING:Bodymass, else the
sidecar or option value, else unknown (absolute kinetics are then refused, see c3d_reader).
Precedence for the other fields: sidecar row, then option, then the file, then unknown.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from .batch import run_batch
from .c3d_reader import C3DError, C3DTrial, read_c3d
from .gait import DEFAULT_STRIDE_TOLERANCE
from .naming import FileNameError, normalise_mode
from .process import _write_report, trial_from_sources
from .trial_h5 import BODY_MASS_RANGE_KG, TrialFileError
from .trial_notes import write_annotated_trial

UNKNOWN = "unknown"
METADATA_FIELDS = ("participant", "condition", "mode", "incline_deg", "speed_m_s", "trial",
                   "body_mass_kg")
_TEXT = re.compile(r"[A-Za-z0-9][\w.\-]*")


@dataclass(frozen=True)
class TrialMetadata:
    """Identity of an imported trial; unknown values are "unknown", NaN or 0 (trial)."""

    participant: str = UNKNOWN
    condition: str = UNKNOWN
    mode: str = UNKNOWN
    incline_deg: float = math.nan
    speed_m_s: float = math.nan
    trial: int = 0


def parse_metadata(values: Mapping[str, object], where: str) -> dict[str, object]:
    """Check and normalise user-given metadata; empty values are left out (unknown).

    ``where`` names the origin (option, sidecar file and row) in error messages.
    """
    unknown = sorted(set(values) - set(METADATA_FIELDS) - {"file"})
    if unknown:
        raise ValueError(f"{where}: unknown metadata field(s) {unknown}; known: "
                         f"{list(METADATA_FIELDS)}")
    out: dict[str, object] = {}
    for name in METADATA_FIELDS:
        value = values.get(name)
        if value is None or str(value).strip() == "":
            continue
        text = str(value).strip()
        try:
            if name in ("participant", "condition"):
                if not _TEXT.fullmatch(text):
                    raise ValueError(f"{text!r} is not a plain name (letters, digits, _.-)")
                out[name] = text
            elif name == "mode":
                out[name] = normalise_mode(text)
            elif name == "trial":
                out[name] = int(text)
                if out[name] < 1:
                    raise ValueError("trial numbers start at 1")
            else:
                number = float(text)
                limits = {"incline_deg": (-30.0, 30.0), "speed_m_s": (0.05, 10.0),
                          "body_mass_kg": BODY_MASS_RANGE_KG}[name]
                if not limits[0] <= number <= limits[1]:
                    raise ValueError(f"{number:g} outside {limits[0]:g}..{limits[1]:g}")
                out[name] = number
        except (ValueError, FileNameError) as exc:
            raise ValueError(f"{where}: {name}: {exc}") from None
    return out


def _mode_and_incline(given: Mapping[str, object], where: str) -> tuple[str, float]:
    """Level ground means 0°; an incline's sign gives AS/DS; AS/DS without incline is refused."""
    mode, incline = given.get("mode"), given.get("incline_deg")
    if mode is None and incline is None:
        return UNKNOWN, math.nan
    if mode is None:
        return ("LG" if incline == 0 else "AS" if incline > 0 else "DS"), float(incline)
    if mode == "LG":
        if incline not in (None, 0.0):
            raise ValueError(f"{where}: mode LG (level ground) with incline {incline:g}°")
        return "LG", 0.0
    if incline is None or incline == 0:
        raise ValueError(f"{where}: mode {mode} needs a non-zero incline_deg")
    return mode, (abs(incline) if mode == "AS" else -abs(incline))


def read_sidecar(path: str | Path) -> dict[str, dict[str, object]]:
    """Per-file metadata from a CSV (column ``file``) or YAML sidecar table.

    YAML: a mapping file -> fields, or a list of rows with ``file``. Keys are file names, stems
    or paths relative to the imported folder.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
            if isinstance(data, dict):
                rows = [{"file": k, **(v or {})} for k, v in data.items()]
            elif isinstance(data, list) and all(isinstance(r, dict) for r in data):
                rows = data
            else:
                raise ValueError("expected a mapping file -> fields or a list of rows")
        elif path.suffix.lower() == ".csv":
            rows = list(csv.DictReader(text.splitlines()))
        else:
            raise ValueError("expected a .csv, .yaml or .yml file")
    except (yaml.YAMLError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable metadata table ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    table: dict[str, dict[str, object]] = {}
    for number, row in enumerate(rows, start=1):
        if None in row:
            raise ValueError(f"{path}: row {number} has more values than the header")
        name = str(row.get("file") or "").strip()
        if not name:
            raise ValueError(f"{path}: row {number} has no 'file' value")
        table[name] = parse_metadata(row, f"{path} row {number} ({name})")
    return table


def _sidecar_row(table: Mapping[str, dict], path: Path, root: Path) -> dict[str, object]:
    relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    for key in (relative, path.name, path.stem):
        if key in table:
            return table[key]
    return {}


def resolve_metadata(c3d: C3DTrial, options: Mapping[str, object], row: Mapping[str, object],
                     where: str) -> tuple[TrialMetadata, dict[str, str]]:
    """Metadata of one file and where each field came from ("sidecar", "option", ...)."""
    given = {**options, **row}
    sources = {name: ("sidecar" if name in row else "option") for name in given}
    participant = given.get("participant")
    if participant is None and c3d.subject and _TEXT.fullmatch(c3d.subject):
        participant, sources["participant"] = c3d.subject, "c3d SUBJECTS:NAMES"
    mode, incline = _mode_and_incline(given, where)
    if mode != UNKNOWN and "incline_deg" not in given:
        sources["incline_deg"] = "implied by mode LG"
    if mode != UNKNOWN and "mode" not in given:
        sources["mode"] = "implied by the incline's sign"
    metadata = TrialMetadata(
        participant=str(participant or UNKNOWN), condition=str(given.get("condition", UNKNOWN)),
        mode=mode, incline_deg=incline, speed_m_s=float(given.get("speed_m_s", math.nan)),
        trial=int(given.get("trial", 0)))
    for name in METADATA_FIELDS[:-1]:
        sources.setdefault(name, UNKNOWN)
    sources["body_mass_kg"] = c3d.body_mass_source
    return metadata, sources


def _output_name(path: Path, root: Path) -> str:
    relative = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    return re.sub(r"[^\w.\-]+", "_", "_".join(relative.with_suffix("").parts)) + ".h5"


def import_c3d(path: Path, root: Path, out_root: Path, options: Mapping[str, object],
               sidecar: Mapping[str, dict], label_suffixes: tuple[str, ...] = (),
               tolerance: float = DEFAULT_STRIDE_TOLERANCE) -> dict:
    """Import one file; return its report row (never raises on bad data)."""
    row = {"trial": path.name, "status": "processed", "files": [str(path)], "reasons": [],
           "output": ""}
    try:
        file_row = _sidecar_row(sidecar, path, root)
        given = {**options, **file_row}
        c3d = read_c3d(path, body_mass_kg=given.get("body_mass_kg"),
                       label_suffixes=label_suffixes)
        metadata, sources = resolve_metadata(c3d, options, file_row, str(path))
    except (C3DError, ValueError) as exc:
        row.update(status="skipped", reasons=[str(exc)])
        return row
    if c3d.body_mass_source.startswith("c3d") and given.get("body_mass_kg") not in (
            None, c3d.body_mass_kg):
        row["reasons"].append(f"body mass {given['body_mass_kg']:g} kg given, but the file's "
                              f"PROCESSING:Bodymass {c3d.body_mass_kg:g} kg is used")
    if c3d.body_mass_kg is None:
        row["reasons"].append("body mass unknown (no PROCESSING:Bodymass, none given): stored "
                              "as NaN; absolute kinetics refused")
    unknown = [name for name, source in sources.items() if source == UNKNOWN]
    if unknown:
        row["reasons"].append(f"stored as unknown: {', '.join(unknown)}")
    trial, issues = trial_from_sources(
        metadata, c3d.angles_rad, c3d.moments_nm_per_kg, c3d.powers_w_per_kg, c3d.events,
        c3d.point_rate_hz, c3d.body_mass_kg, None, None, synthetic=c3d.synthetic,
        first_frame=c3d.first_frame, source_files=[path], tolerance=tolerance)
    row["reasons"] += c3d.notes + issues
    if not any(len(s) for s in trial.strides.values()):
        row["reasons"].append("no accepted stride")
    output = out_root / "trials" / metadata.participant / metadata.condition / \
        _output_name(path, root)
    try:
        write_annotated_trial(output, trial, c3d.channels,
                              {"metadata_sources": json.dumps(sources),
                               "import_notes": json.dumps(row["reasons"])})
    except TrialFileError as exc:
        row.update(status="skipped", reasons=[*row["reasons"], str(exc)])
        return row
    row["output"] = str(output)
    return row


def import_c3d_files(source: str | Path, out_root: str | Path,
                     options: Mapping[str, object] | None = None,
                     metadata_file: str | Path | None = None,
                     label_suffixes: tuple[str, ...] = (),
                     tolerance: float = DEFAULT_STRIDE_TOLERANCE, jobs: int = 1,
                     progress: bool = False) -> dict:
    """Import one c3d file or every c3d file under a folder; write report.json/.csv.

    Raises ValueError (after writing the report) when no file could be imported.
    """
    source, out_root = Path(source), Path(out_root)
    options = parse_metadata(dict(options or {}), "options")
    sidecar = read_sidecar(metadata_file) if metadata_file else {}
    if source.is_file():
        root, files = source.parent, [source]
    elif source.is_dir():
        root = source
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() == ".c3d"
                       and p.is_file() and not p.name.startswith("."))
        if not files:
            raise FileNotFoundError(f"{source}: no .c3d file in this folder or below")
    else:
        raise FileNotFoundError(f"{source}: no such file or folder")
    rows = run_batch(import_c3d, [
        (path, root, out_root, options, sidecar, tuple(label_suffixes), tolerance)
        for path in files], jobs, "c3d files", progress)
    outputs: dict[str, str] = {}
    for row in rows:  # two inputs never share an output silently
        if row["output"] and row["output"] in outputs:
            row["reasons"].append(f"same output as {outputs[row['output']]}: the later file "
                                  "replaced it")
        outputs.setdefault(row["output"], row["trial"])
    unmatched = sorted(set(sidecar) - {k for p in files for k in (
        p.relative_to(root).as_posix(), p.name, p.stem)})
    if unmatched:
        rows.append({"trial": "", "status": "skipped", "files": [str(metadata_file)],
                     "reasons": [f"sidecar rows match no imported file: {unmatched}"],
                     "output": ""})
    report = _write_report(out_root, rows)
    imported = [r for r in rows if r["status"] == "processed"]
    if not imported:
        first = next((r["reasons"][0] for r in rows if r["reasons"]), "no reason recorded")
        raise ValueError(f"nothing imported: {len(files)} c3d file(s) skipped, e.g. {first} "
                         f"(report: {report})")
    return {"rows": rows, "report": str(report)}
