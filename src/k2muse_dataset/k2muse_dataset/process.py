"""Process a K2MUSE release folder into trial HDF5 files, processed .mat files and a report.

Reproduces the authors' MATLAB pipeline: Vicon, sEMG and AUS streams all start at the Lock Lab
trigger, so they are aligned by sample index (sample i at i/fs); strides are cut at heel
strikes per side, time-normalised and summarised by mean/SD per trial and per condition. One bad
file never stops a run: every trial ends up in the report as processed, up to date, or skipped
with its reasons. Outputs are atomic; a rerun skips trials whose outputs are newer than their
sources.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import commits_in_background, sweep_leftovers, write_text_atomic
from .aus_reader import AUSFileError, merge_aus_channels
from .batch import run_batch
from .c3d_reader import C3DError, GaitEvents, read_c3d
from .emg_reader import EMGFileError, read_noraxon_mat
from .gait import (
    DEFAULT_POINTS,
    DEFAULT_STRIDE_TOLERANCE,
    mean_sd,
    normalise_strides,
    segment_strides,
)
from .mat_io import MatFileError, save_mat_v5
from .naming import FileNameError, TrialKey, parse_elonxi_name, parse_noraxon_name, parse_vicon_name
from .participants import ParticipantFileError, read_participant_info
from .trial_h5 import (
    AUS_FRAME_RATE_HZ,
    EMG_RATE_HZ,
    JOINTS,
    SIDES,
    Trial,
    TrialFileError,
    read_trial_h5,
    stored_form,
)
from .trial_notes import write_annotated_trial

TRIAL_RATE_HZ = 100.0
_DATATYPES = (("Angles", "angles_rad", "Angles", np.degrees),
              ("Moments", "moments_nm_per_kg", "Moment", None),
              ("Powers", "powers_w_per_kg", "Power", None))


@dataclass
class TrialSources:
    """The files of one trial, one entry per modality (absent modality: None/empty)."""

    vicon: Path | None = None
    elonxi: dict[int, Path] = field(default_factory=dict)
    noraxon: Path | None = None

    def all_files(self) -> list[Path]:
        """Every source file, for the report and the freshness check."""
        files = [self.vicon, *self.elonxi.values(), self.noraxon]
        return [f for f in files if f is not None]


def discover(release_root: Path) -> tuple[dict[TrialKey, TrialSources], list[dict]]:
    """Find every trial's files; return them and report rows for files whose name is unknown."""
    trials: dict[TrialKey, TrialSources] = defaultdict(TrialSources)
    skipped = []
    source = release_root / "SourceData"
    for folder, pattern, parse in (("Vicon", "*.c3d", parse_vicon_name),
                                   ("ELONXI", "*.txt", parse_elonxi_name),
                                   ("Noraxon", "*.mat", parse_noraxon_name)):
        for path in sorted((source / folder).rglob(pattern)):
            if path.name.startswith("."):
                continue
            try:
                parsed = parse(path)
            except FileNameError as exc:
                skipped.append({"trial": "", "status": "skipped", "files": [str(path)],
                                "reasons": [f"unrecognised file name: {exc}"], "output": ""})
                continue
            if folder == "Vicon":
                trials[parsed].vicon = path
            elif folder == "ELONXI":
                key, channel = parsed
                trials[key].elonxi[channel] = path
            else:
                trials[parsed].noraxon = path
    return dict(sorted(trials.items())), skipped


def _resample(values: np.ndarray, t_in: np.ndarray, t_out: np.ndarray) -> np.ndarray:
    flat = values.reshape(values.shape[0], -1)
    out = np.stack([np.interp(t_out, t_in, col) for col in flat.T], axis=1)
    return out.reshape(t_out.size, *values.shape[1:])


def trial_from_sources(key: TrialKey, angles_rad: dict, moments: dict, powers: dict,
                       events: GaitEvents, rate_hz: float, body_mass_kg: float | None,
                       emg_uv: np.ndarray | None, aus_frames: np.ndarray | None,
                       synthetic: bool, first_frame: int = 0, source_files: list | None = None,
                       emg_channel_names: list | None = None,
                       tolerance: float = DEFAULT_STRIDE_TOLERANCE) -> tuple[Trial, list[str]]:
    """Build a :class:`Trial` on the 100 Hz trigger time base; return it and its QC issues."""
    n = next(iter(angles_rad.values())).shape[0]
    t_in = (first_frame + np.arange(n)) / rate_hz
    issues: list[str] = list(events.ignored)
    if abs(rate_hz - TRIAL_RATE_HZ) > 1e-9:
        t_out = np.arange(np.ceil(t_in[0] * TRIAL_RATE_HZ),
                          np.floor(t_in[-1] * TRIAL_RATE_HZ + 1e-9) + 1) / TRIAL_RATE_HZ
        angles_rad = {j: _resample(v, t_in, t_out) for j, v in angles_rad.items()}
        moments = {j: _resample(v, t_in, t_out) for j, v in moments.items()}
        powers = {j: _resample(v, t_in, t_out) for j, v in powers.items()}
        issues.append(f"resampled from {rate_hz:g} Hz to {TRIAL_RATE_HZ:g} Hz")
        t_in = t_out
    frames = np.clip(np.rint(events.time_s * TRIAL_RATE_HZ - t_in[0] * TRIAL_RATE_HZ),
                     0, t_in.size - 1).astype(np.int64)
    required = {f"hip {kind}": series["hip"][:, :, 0]
                for kind, series in (("angle", angles_rad), ("moment", moments)) if "hip" in series}
    segmentation = segment_strides(frames, events.side, events.kind, TRIAL_RATE_HZ, tolerance,
                                   required)
    issues += segmentation.issues
    if aus_frames is not None:
        needed = t_in[-1] * AUS_FRAME_RATE_HZ
        if aus_frames.shape[0] < needed - 1:
            issues.append(f"too few AUS frames: {aus_frames.shape[0]} for {t_in[-1]:.1f} s "
                          f"(expected ~{int(needed)}); late strides have no AUS data")
    trial = Trial(
        participant=key.participant, condition=key.condition, mode=key.mode,
        incline_deg=key.incline_deg, speed_m_s=key.speed_m_s, trial=key.trial,
        body_mass_kg=float(body_mass_kg) if body_mass_kg else float("nan"),
        synthetic=synthetic, time_s=t_in, angles_rad=angles_rad, moments_nm_per_kg=moments,
        powers_w_per_kg=powers or None, event_time_s=events.time_s, event_frame=frames,
        event_side=events.side, event_kind=events.kind, strides=segmentation.strides,
        emg_uv=emg_uv, emg_channel_names=emg_channel_names,
        aus_frames=aus_frames, aus_channel_names=[f"Ch{c}" for c in range(1, 5)]
        if aus_frames is not None else None,
        source_files=[str(s) for s in source_files or []], sample_rate_hz=TRIAL_RATE_HZ)
    return trial, issues


def _events_struct(trial: Trial) -> dict:
    names = {(0, 0): "LeftFootStrike", (0, 1): "LeftFootOff", (1, 0): "RightFootStrike",
             (1, 1): "RightFootOff"}
    times, frames = {}, {}
    for (side, kind), name in names.items():
        mask = (trial.event_side == side) & (trial.event_kind == kind)
        times[name] = np.asarray(trial.event_time_s[mask], np.float64)
        frames[name] = np.asarray(trial.event_frame[mask] + 1, np.float64)  # MATLAB 1-based
    return {"EventTime": times, "EventFrame": frames}


def _compact_aus(frames: np.ndarray) -> np.ndarray:
    """int16 when the samples are integers in range (halves the .mat), else float32."""
    if np.all(np.mod(frames, 1) == 0) and np.all(np.abs(frames) < 32767):
        return frames.astype(np.int16)
    return frames.astype(np.float32)


def _stride_windows(strides: np.ndarray, rate_in: float, rate_out: float,
                    limit: int) -> list[tuple[int, int]]:
    """Map (start, end) sample indices at ``rate_in`` to [start, end) at ``rate_out``."""
    return [(min(limit, int(np.floor(s * rate_out / rate_in))),
             min(limit, int(np.floor(e * rate_out / rate_in)))) for s, e in strides]


def trial_entries(trial: Trial, n_points: int = DEFAULT_POINTS,
                  streams: bool = True) -> tuple[dict, dict]:
    """OriginalData and NormalizedData structs of one trial (the released layout).

    ``streams``: include USData and EMGData (large: copies of the raw sEMG/AUS samples).
    """
    original: dict = {}
    normalised: dict = {}
    offset = trial.time_s[0] * trial.sample_rate_hz
    curves: dict[str, list[tuple[str, str, np.ndarray]]] = {side: [] for side in SIDES}
    for datatype, attr, suffix, convert in _DATATYPES:
        series = getattr(trial, attr) or {}
        original[datatype], normalised[datatype] = {}, {}
        for joint in JOINTS:
            if joint not in series:
                continue
            for side_index, side in enumerate(SIDES):
                label = f"{side[0].upper()}{joint.capitalize()}{suffix}"
                values = series[joint][:, side_index, :]
                values = convert(values) if convert else values
                original[datatype][label] = values
                normalised[datatype][label] = None  # filled below, in this order
                curves[side].append((datatype, label, values))
    for side, side_curves in curves.items():
        if not side_curves:
            continue
        # All curves of a side in one call each (the same numbers, a fraction of the calls);
        # mean/SD per curve where a curve has gaps (NaN), which mean_sd treats per array.
        resampled = normalise_strides(np.stack([values for *_, values in side_curves], axis=1),
                                      trial.strides[side], n_points)
        summary = None if np.isnan(resampled).any() else mean_sd(resampled)
        for index, (datatype, label, _) in enumerate(side_curves):
            rs = resampled[:, index]
            mean, sd = mean_sd(rs) if summary is None else (summary[0][:, index],
                                                            summary[1][:, index])
            normalised[datatype][label] = {"rsGaitData": rs, "MeanValues": mean,
                                           "StdValues": sd}
    original["Events"] = _events_struct(trial)
    normalised["Events"] = {
        f"{s[0].upper()}{edge}Frame": (trial.strides[s][:, i] + 1 + offset).astype(np.float64)
        for s in SIDES for i, edge in enumerate(("Start", "End"))}
    if streams and trial.aus_frames is not None:
        frames = _compact_aus(trial.aus_frames)
        original["USData"] = [f for f in frames]
        windows = _stride_windows(trial.strides["left"], trial.sample_rate_hz,
                                  AUS_FRAME_RATE_HZ, frames.shape[0])
        normalised["USData"] = [frames[a:b] for a, b in windows]
    if streams and trial.emg_uv is not None:
        original["EMGData"] = trial.emg_uv
        normalised["EMGData"] = {}
        for side, cols in (("Right", slice(0, 9)), ("Left", slice(9, 13))):
            windows = _stride_windows(trial.strides[side.lower()], trial.sample_rate_hz,
                                      EMG_RATE_HZ, trial.emg_uv.shape[0])
            normalised["EMGData"][side] = [trial.emg_uv[a:b, cols] for a, b in windows]
    return original, normalised


def processed_entry(trials: list[tuple[TrialKey, Trial]], n_points: int = DEFAULT_POINTS,
                    streams: bool = True) -> dict:
    """One participant's struct (:func:`participant_struct`) from its trials."""
    return participant_struct([(key, trial_entries(trial, n_points, streams))
                               for key, trial in trials])


def _pool_strides(arrays: list[np.ndarray]) -> np.ndarray:
    """Concatenate (points, ..., S) arrays on the stride axis, stored strides-first.

    The sums of mean/SD depend on the memory layout; a fixed one gives the same last bits
    whether a trial's curves were computed here, in a worker (pickled: contiguous) or from its
    file read back.
    """
    pooled = np.empty((arrays[0].shape[0], sum(a.shape[-1] for a in arrays),
                       *arrays[0].shape[1:-1]))
    np.concatenate([np.moveaxis(a, -1, 1) for a in arrays], axis=1, out=pooled)
    return np.moveaxis(pooled, 1, -1)


def participant_struct(entries: list[tuple[TrialKey, tuple[dict, dict]]]) -> dict:
    """One participant's struct: OriginalData/NormalizedData.<Cond>.<Mode>.<Speed>.<Trial>.

    ``entries``: each trial's key and its OriginalData/NormalizedData structs
    (:func:`trial_entries`). Each <Speed> level of NormalizedData also holds ``AllTrials``:
    mean/SD over the strides of all its trials (the per-condition summary).
    """
    original: dict = {}
    normalised: dict = {}
    pooled: dict = defaultdict(lambda: defaultdict(list))
    for key, (orig, norm) in sorted(entries, key=lambda entry: entry[0]):
        path = (key.condition, key.mode_key, key.speed_key)
        for tree, value in ((original, orig), (normalised, norm)):
            node = tree
            for level in path:
                node = node.setdefault(level, {})
            node[f"Trial_{key.trial}"] = value
        for datatype, *_ in _DATATYPES:
            for label, entry in norm[datatype].items():
                pooled[path][(datatype, label)].append(entry["rsGaitData"])
    for path, variables in pooled.items():
        summary: dict = {}
        for (datatype, label), arrays in variables.items():
            mean, sd = mean_sd(_pool_strides(arrays))
            summary.setdefault(datatype, {})[label] = {"MeanValues": mean, "StdValues": sd}
        normalised[path[0]][path[1]][path[2]]["AllTrials"] = summary
    return {"OriginalData": original, "NormalizedData": normalised}


def trial_output_path(out_root: Path, key: TrialKey) -> Path:
    """``<out>/trials/<P>/<Condition>/<stem>.h5`` (docs/architecture.md section 1)."""
    return out_root / "trials" / key.participant / key.condition / f"{key.stem}.h5"


def _up_to_date(output: Path, sources: TrialSources) -> bool:
    if not output.is_file():
        return False
    newest = max(p.stat().st_mtime for p in sources.all_files())
    return output.stat().st_mtime >= newest


def process_trial(key: TrialKey, sources: TrialSources, out_root: Path,
                  masses: dict[str, float], tolerance: float = DEFAULT_STRIDE_TOLERANCE,
                  force: bool = False) -> tuple[dict, Trial | None]:
    """Read, merge and write one trial (never raises on bad data).

    Returns its report row and the trial as its file now holds it (:func:`stored_form`), or
    None when nothing was written (skipped, up to date).
    """
    output = trial_output_path(out_root, key)
    row = {"trial": key.stem, "status": "processed", "files": [str(p) for p in
           sources.all_files()], "reasons": [], "output": str(output)}
    if sources.vicon is None:
        row.update(status="skipped", output="", reasons=["no Vicon c3d file (kinematics are "
                                                         "required)"])
        return row, None
    if not force and _up_to_date(output, sources):
        row["status"] = "up-to-date"
        return row, None
    try:
        c3d = read_c3d(sources.vicon, body_mass_kg=masses.get(key.participant))
    except C3DError as exc:
        row.update(status="skipped", output="", reasons=[str(exc)])
        return row, None
    emg = emg_names = aus = None
    if sources.noraxon is None:
        row["reasons"].append("missing modality: sEMG (no Noraxon file)")
    else:
        try:
            recording = read_noraxon_mat(sources.noraxon)
            emg, emg_names = recording.signals_uv, recording.channel_names
            row["reasons"] += [f"{sources.noraxon.name}: {n}" for n in recording.notes]
            if abs(recording.sample_rate_hz - EMG_RATE_HZ) > 1e-6:
                row["reasons"].append(f"sEMG dropped: rate {recording.sample_rate_hz} Hz, "
                                      f"expected {EMG_RATE_HZ}")
                emg = emg_names = None
        except (EMGFileError, MatFileError) as exc:
            row["reasons"].append(f"missing modality: sEMG ({exc})")
    if not sources.elonxi:
        row["reasons"].append("missing modality: AUS (no ELONXI files)")
    else:
        try:
            aus, _ = merge_aus_channels(sources.elonxi)
        except AUSFileError as exc:
            row["reasons"].append(f"missing modality: AUS ({exc})")
    mass = c3d.body_mass_kg or masses.get(key.participant)
    if mass is None:
        row["reasons"].append("body mass unknown (no PROCESSING:Bodymass, no sheet entry)")
    trial, issues = trial_from_sources(
        key, c3d.angles_rad, c3d.moments_nm_per_kg, c3d.powers_w_per_kg, c3d.events,
        c3d.point_rate_hz, mass, emg, aus, synthetic=c3d.synthetic, first_frame=c3d.first_frame,
        source_files=sources.all_files(), emg_channel_names=emg_names, tolerance=tolerance)
    row["reasons"] += c3d.notes + issues
    if not any(len(s) for s in trial.strides.values()):
        row["reasons"].append("no accepted stride")
    try:
        write_annotated_trial(output, trial, c3d.channels)
    except TrialFileError as exc:  # the sources hold values the trial contract refuses
        row.update(status="skipped", output="", reasons=[*row["reasons"], str(exc)])
        return row, None
    return row, stored_form(trial)


def _trial_job(key: TrialKey, sources: TrialSources, out_root: Path, masses: dict[str, float],
               tolerance: float, force: bool,
               mat: tuple[int, bool] | None) -> tuple[dict, tuple | None]:
    """:func:`process_trial`, and with ``mat`` (n_points, streams) the written trial's .mat part.

    The part (synthetic flag, OriginalData and NormalizedData entries) is computed in the
    worker, so the participant's P*.mat needs no read of the trial file back.
    """
    row, trial = process_trial(key, sources, out_root, masses, tolerance, force)
    if mat is None or trial is None:
        return row, None
    return row, (trial.synthetic, *trial_entries(trial, *mat))


def _participant_mat(participant: str, trials: list[tuple[TrialKey, Path, tuple | None]],
                     out_root: Path, n_points: int, streams: bool) -> dict:
    """Write ``processed/<P>.mat``: (key, trial file, entries or None to read the file back)."""
    entries, synthetic = [], []
    files = [path for _, path, _ in trials]
    target = out_root / "processed" / f"{participant}.mat"
    try:
        for key, path, written in trials:
            if written is None:  # not written by this run: read back what an earlier run wrote
                trial = read_trial_h5(path, load_emg=streams, load_aus=streams)
                written = (trial.synthetic, *trial_entries(trial, n_points, streams))
            synthetic.append(written[0])
            entries.append((key, written[1:]))
        # float64 curves shrink only ~25 % under zlib, which took 10x the rest of the write;
        # the sEMG/AUS copies (``streams``) shrink far more and stay compressed.
        save_mat_v5(target, {participant: participant_struct(entries),
                             "synthetic": int(all(synthetic))}, compress=streams)
    except (TrialFileError, OSError, ValueError) as exc:
        return {"trial": participant, "status": "failed", "files": [str(f) for f in files],
                "reasons": [f"processed .mat not written: {exc}"], "output": ""}
    return {"trial": participant, "status": "processed", "files": [str(f) for f in files],
            "reasons": [], "output": str(target)}


def _write_report(out_root: Path, rows: list[dict]) -> Path:
    counts = defaultdict(int)
    for row in rows:
        counts[row["status"]] += 1
    write_text_atomic(out_root / "report.json",
                      json.dumps({"summary": dict(counts), "rows": rows}, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial", "status", "reasons", "output", "files"])
    for row in rows:
        writer.writerow([row["trial"], row["status"], " | ".join(row["reasons"]), row["output"],
                         " ".join(row["files"])])
    write_text_atomic(out_root / "report.csv", buffer.getvalue())
    return out_root / "report.json"


def process_release(release_root: str | Path, out_root: str | Path, jobs: int | None = None,
                    n_points: int = DEFAULT_POINTS,
                    tolerance: float = DEFAULT_STRIDE_TOLERANCE, write_mat: bool = True,
                    mat_streams: bool = False, force: bool = False,
                    progress: bool = False) -> dict:
    """Process every trial under ``release_root``; return the report (also written as files).

    ``jobs``: worker processes (default: all cores). ``force``: ignore up-to-date outputs.
    ``mat_streams``: also copy sEMG/AUS into processed/P*.mat (USData/EMGData; large).
    """
    release_root, out_root = Path(release_root), Path(out_root)
    if not (release_root / "SourceData").is_dir():
        raise FileNotFoundError(f"{release_root}: no SourceData folder (not a K2MUSE release; "
                                "`k2muse import` reads c3d files under any name)")
    if out_root.resolve() == release_root.resolve() or release_root.resolve() in \
            out_root.resolve().parents and (out_root.resolve() / "SourceData").exists():
        raise ValueError(f"{out_root}: output must not overwrite the release")
    jobs = jobs or os.cpu_count() or 1
    sweep_leftovers(out_root, recursive=True)  # temporaries of an interrupted earlier run
    trials, rows = discover(release_root)
    masses: dict[str, float] = {}
    sheet = release_root / "ParticipantInformation.xlsx"
    if sheet.is_file():
        try:
            masses = {p: float(v["mass_kg"]) for p, v in read_participant_info(sheet).items()
                      if isinstance(v.get("mass_kg"), (int, float))}
        except ParticipantFileError as exc:
            rows.append({"trial": "", "status": "skipped", "files": [str(sheet)],
                         "reasons": [str(exc)], "output": ""})
    by_participant: dict[str, list[tuple[TrialKey, TrialSources]]] = defaultdict(list)
    for key, src in trials.items():
        by_participant[key.participant].append((key, src))
    mat = (n_points, mat_streams) if write_mat else None
    mat_rows = []
    # One participant at a time: the .mat entries of its written trials are held only until
    # its P*.mat is written; trials an earlier run wrote are read back from their files.
    for participant, keyed in sorted(by_participant.items()):
        # One process: a trial file's fsync and rename overlap the next trial's read (on
        # exit all are in place); several workers fill each other's disk waits anyway.
        with commits_in_background() if jobs == 1 else contextlib.nullcontext():
            results = run_batch(_trial_job, [
                (key, src, out_root, masses, tolerance, force, mat) for key, src in keyed],
                jobs, f"{participant} trials", progress)
        rows += [row for row, _ in results]
        target = out_root / "processed" / f"{participant}.mat"
        changed = any(row["status"] == "processed" for row, _ in results)
        available = [(key, trial_output_path(out_root, key), written)
                     for (key, _), (_, written) in zip(keyed, results, strict=True)]
        available = [item for item in available if item[2] is not None or item[1].is_file()]
        if write_mat and available and (changed or not target.is_file()):
            mat_rows.append(_participant_mat(participant, available, out_root, n_points,
                                             mat_streams))
    rows += mat_rows
    _write_report(out_root, rows)
    return {"rows": rows, "report": str(out_root / "report.json")}
