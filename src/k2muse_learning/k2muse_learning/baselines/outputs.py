"""What a sweep leaves on disk: CSV and Markdown tables, confusion matrices, bar plots.

Every file is written to a temporary name in the output folder and then renamed, so an
interrupted run never leaves half a table over a previous good one.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import yaml
from k2muse_dataset.atomic import atomic_path, write_text_atomic

from .dataset import JOINTS
from .phases import PHASE_NAMES
from .sweep import SweepConfig, SweepResult

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)


def _csv_text(rows: Sequence[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _pm(row: dict, metric: str, digits: int) -> str:
    return f"{row[f'{metric}_mean']:.{digits}f} ± {row[f'{metric}_sd']:.{digits}f}"


def _row_tags(row: dict) -> list[str]:
    return [row["protocol"], row["condition"], row["modality"], row["model"],
            str(row["participants"])]


def markdown_summary(summary: Sequence[dict]) -> str:
    """Two Markdown tables (regression, classification), mean ± SD across participants."""
    lines = ["# Baseline results (mean ± SD across participants)", ""]
    reg = [r for r in summary if r["task"] == "regression"]
    if reg:
        head = ["protocol", "condition", "modality", "model", "n"]
        head += [f"RMSE {j} (deg)" for j in JOINTS] + [f"R² {j}" for j in JOINTS]
        head += [f"nRMSE {j} (%)" for j in JOINTS]
        lines += ["## Joint-angle regression (sagittal)", "", "| " + " | ".join(head) + " |"]
        lines.append("|" + "---|" * len(head))
        for r in reg:
            cells = _row_tags(r)
            cells += [_pm(r, f"rmse_deg_{j}", 2) for j in JOINTS]
            cells += [_pm(r, f"r2_{j}", 3) for j in JOINTS]
            cells += [_pm(r, f"nrmse_pct_{j}", 1) for j in JOINTS]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    cls = [r for r in summary if r["task"] == "classification"]
    if cls:
        head = ["protocol", "condition", "modality", "model", "n", "accuracy", "macro-F1"]
        lines += ["## Gait-phase classification", "", "| " + " | ".join(head) + " |"]
        lines.append("|" + "---|" * len(head))
        for r in cls:
            cells = _row_tags(r)
            cells += [_pm(r, "accuracy", 3), _pm(r, "macro_f1", 3)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _grouped_bars(ax, groups: Sequence[str], series: dict[str, tuple[list, list]], ylabel: str):
    """Bars of each series (model) side by side within each group, with SD error bars."""
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for k, (name, (means, sds)) in enumerate(series.items()):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, means, width, yerr=sds, capsize=2,
               label=name)
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def plot_results(summary: Sequence[dict], out_dir: Path) -> list[Path]:
    """Bar plots like the authors': RMSE by model and joint, accuracy by model (± SD)."""
    written = []
    keys = sorted({(r["task"], r["protocol"], r["condition"]) for r in summary})
    for task, protocol, condition in keys:
        rows = [r for r in summary if (r["task"], r["protocol"], r["condition"])
                == (task, protocol, condition)]
        modalities = list(dict.fromkeys(r["modality"] for r in rows))
        models = list(dict.fromkeys(r["model"] for r in rows))
        if task == "regression":
            fig, axes = plt.subplots(1, len(modalities), figsize=(5 * len(modalities), 3.6),
                                     squeeze=False, sharey=True)
            for ax, modality in zip(axes[0], modalities, strict=True):
                by_model = {r["model"]: r for r in rows if r["modality"] == modality}
                series = {
                    m: ([by_model[m][f"rmse_deg_{j}_mean"] for j in JOINTS],
                        [by_model[m][f"rmse_deg_{j}_sd"] for j in JOINTS])
                    for m in models if m in by_model
                }
                _grouped_bars(ax, list(JOINTS), series, "RMSE (deg)")
                ax.set_title(f"{modality}")
            axes[0][-1].legend(fontsize=7, loc="upper right")
            fig.suptitle(f"Joint-angle RMSE — {protocol}, test {condition}")
        else:
            fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(modalities) * len(models) / 3), 3.6))
            series = {}
            for m in models:
                by_mod = {r["modality"]: r for r in rows if r["model"] == m}
                series[m] = ([by_mod[x]["accuracy_mean"] if x in by_mod else np.nan
                              for x in modalities],
                             [by_mod[x]["accuracy_sd"] if x in by_mod else 0.0
                              for x in modalities])
            _grouped_bars(ax, modalities, series, "accuracy")
            ax.set_ylim(0, 1)
            ax.legend(fontsize=7, ncol=2)
            ax.set_title(f"Gait-phase accuracy — {protocol}, test {condition}")
        path = out_dir / f"{task}_{protocol}_{condition}.png"
        _save(fig, path)
        written.append(path)
    return written


def write_outputs(config: SweepConfig, result: SweepResult, out_dir: str | Path) -> list[Path]:
    """Write tables, confusion matrices, plots and the resolved config; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    files = {
        "results_per_participant.csv": _csv_text(result.rows),
        "summary.csv": _csv_text(summary),
        "summary.md": markdown_summary(summary),
        "timings.csv": _csv_text(result.timings),
        "config_used.yaml": yaml.safe_dump(config.to_dict(), sort_keys=False),
        "confusion.json": json.dumps(
            {
                "labels": list(PHASE_NAMES),
                "rows_are": "true phase",
                "matrices": [
                    {"protocol": p, "condition": c, "modality": m, "model": name,
                     "counts": matrix.tolist()}
                    for (p, c, m, name), matrix in sorted(result.confusion.items())
                ],
            },
            indent=1,
        ),
    }
    written = []
    for name, text in files.items():
        write_text_atomic(out_dir / name, text)
        written.append(out_dir / name)
    return written + plot_results(summary, out_dir)
