"""Trial HDF5 files annotated with where each channel came from and what was done to it.

The trial contract (docs/architecture.md section 1) holds the values; these attributes say,
per side, which c3d label was read, its unit, the factor applied, whether it was divided by the
body mass, and how many source frames became NaN as gaps or artefacts. They are written in the
same atomic write as the values, so a trial file never exists without them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from .c3d_reader import ChannelReport
from .trial_h5 import SIDES, Trial, write_trial_h5

DATASETS = {"angle": "kinematics/{joint}_angle_rad", "moment": "kinetics/{joint}_moment_nm_per_kg",
            "power": "kinetics/{joint}_power_w_per_kg"}


def channel_attributes(channels: Mapping[str, ChannelReport]) -> dict[str, dict[str, object]]:
    """Dataset path -> attributes (``left_source_label``, ``right_normalisation``, ...)."""
    attrs: dict[str, dict[str, object]] = {}
    for report in channels.values():
        if report.kind not in DATASETS:
            continue  # joint forces are not part of the trial file
        side = SIDES[report.side]
        attrs.setdefault(DATASETS[report.kind].format(joint=report.joint), {}).update({
            f"{side}_source_label": report.label,
            f"{side}_source_candidates": json.dumps(report.candidates),
            f"{side}_source_unit": report.unit,
            f"{side}_scale_to_si": float(report.scale),
            f"{side}_normalisation": report.normalisation,
            f"{side}_gap_frames_in_source": int(report.gap_frames),
            f"{side}_artefact_frames_in_source": int(report.artefact_frames),
            f"{side}_refused": report.refused,
        })
    return attrs


def write_annotated_trial(path: str | Path, trial: Trial, channels: Mapping[str, ChannelReport],
                          root_attrs: Mapping[str, object] | None = None) -> Path:
    """Write ``trial`` with per-channel provenance attributes (and extra root attributes)."""
    return write_trial_h5(path, trial, channel_attributes(channels), root_attrs)
