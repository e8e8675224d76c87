"""Figures like the authors' scriptPlot: mean ± SD across participants per incline and speed.

Each participant contributes one mean curve per (mode, speed) (the mean of all its strides,
both sides); the figure shows the mean and SD of those curves, so participants weigh equally.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

from .atomic import atomic_path  # noqa: E402
from .gait import DEFAULT_POINTS, normalise_strides  # noqa: E402
from .trial_h5 import JOINTS, SIDES, read_trial_h5  # noqa: E402

VARIABLES = [(f"{j}_angle", "angles_rad", j, "deg", np.degrees) for j in JOINTS] + [
    (f"{j}_moment", "moments_nm_per_kg", j, "N·m/kg", None) for j in JOINTS]
_MODE_ORDER = ("DS_10", "DS_5", "LG_0", "AS_5", "AS_10")


def participant_curves(files: Iterable[Path], n_points: int = DEFAULT_POINTS
                       ) -> dict[tuple[str, float | None], dict[str, dict[str, np.ndarray]]]:
    """{(mode_key, speed): {variable: {participant: mean curve (n_points,)}}} (sagittal).

    An unknown (NaN) speed is the key None: one group, as NaN never equals itself.
    """
    pooled: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for path in files:
        trial = read_trial_h5(path, load_emg=False, load_aus=False)
        speed = None if np.isnan(trial.speed_m_s) else trial.speed_m_s
        for name, attr, joint, _, _ in VARIABLES:
            series = getattr(trial, attr).get(joint)
            if series is None:
                continue
            for side_index, side in enumerate(SIDES):
                strides = trial.strides.get(side, np.zeros((0, 2)))
                if len(strides):
                    curves = normalise_strides(series[:, side_index, 0], strides, n_points)
                    pooled[(trial.mode_key, speed)][name][trial.participant].append(curves)
    return {group: {name: {p: np.nanmean(np.concatenate(c, axis=-1), axis=-1)
                           for p, c in by_p.items()} for name, by_p in variables.items()}
            for group, variables in pooled.items()}


def plot_condition_means(files: Iterable[Path], out_dir: str | Path,
                         formats: tuple[str, ...] = ("png", "svg"),
                         n_points: int = DEFAULT_POINTS) -> list[Path]:
    """Write ``joint_angles_moments.<fmt>``: rows = variables, columns = inclines."""
    curves = participant_curves(files, n_points)
    if not curves:
        raise ValueError("no strides to plot (no trial files, or none with accepted strides)")
    modes = sorted({m for m, _ in curves}, key=lambda m: (_MODE_ORDER + (m,)).index(m))
    speeds = sorted({s for _, s in curves}, key=lambda s: (s is None, s or 0.0))
    fig, axes = plt.subplots(len(VARIABLES), len(modes), figsize=(3.2 * len(modes), 12),
                             sharex=True, squeeze=False)
    cycle = np.linspace(0, 100, n_points)
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(speeds)))
    for col, mode in enumerate(modes):
        axes[0, col].set_title(mode.replace("_", " ") + ("°" if "_" in mode else ""))
        for row, (name, _, _, unit, convert) in enumerate(VARIABLES):
            ax = axes[row, col]
            for speed, colour in zip(speeds, colours, strict=True):
                by_participant = curves.get((mode, speed), {}).get(name)
                if not by_participant:
                    continue
                stack = np.stack(list(by_participant.values()))
                stack = convert(stack) if convert else stack
                mean = stack.mean(axis=0)
                sd = stack.std(axis=0, ddof=1) if len(stack) > 1 else np.zeros_like(mean)
                speed_text = "unknown speed" if speed is None else f"{speed:g} m/s"
                ax.plot(cycle, mean, color=colour, label=f"{speed_text} (n={len(stack)})")
                ax.fill_between(cycle, mean - sd, mean + sd, color=colour, alpha=0.25)
            if col == 0:
                ax.set_ylabel(f"{name.replace('_', ' ')} ({unit})")
            if row == len(VARIABLES) - 1:
                ax.set_xlabel("gait cycle (%)")
        axes[0, col].legend(fontsize=7)
    fig.suptitle("Mean ± SD across participants (sagittal plane)")
    fig.tight_layout()
    written = []
    for fmt in formats:
        target = Path(out_dir) / f"joint_angles_moments.{fmt}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=120)
        written.append(target)
    plt.close(fig)
    return written
