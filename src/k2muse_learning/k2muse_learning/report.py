"""Run one trial through every available backend of a model folder (authors' control demo).

For each backend (PyTorch, ONNX Runtime on the simplified model, TensorRT where an engine and
a GPU exist) the trial's windows are estimated, scored (RMSE N·m/kg, R²) and compared with
PyTorch (max abs error), and single-window latency is measured. A plot shows estimated vs
measured hip moment over time.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from k2muse_dataset.atomic import atomic_path

from k2muse_learning import artifacts
from k2muse_learning.export import OnnxRuntimeRunner, Predictor, TorchRunner, predict
from k2muse_learning.training import regression_metrics
from k2muse_learning.windows import LegSeries, WindowSet, cut_windows, load_legs


@dataclass
class BackendResult:
    """Scores of one backend on one trial."""

    backend: str
    rmse_nm_per_kg: float
    r2: float
    max_abs_diff_vs_torch: float
    latency_p50_ms: float
    latency_p99_ms: float


def single_window_latency_ms(runner: Predictor, windows: np.ndarray, repeats: int
                             ) -> np.ndarray:
    """Wall-clock milliseconds of `repeats` single-window calls (after 10 warm-up calls)."""
    picks = np.resize(np.arange(len(windows)), repeats + 10)
    timings = []
    for count, index in enumerate(picks):
        start = time.perf_counter()
        runner(windows[index:index + 1])
        if count >= 10:
            timings.append((time.perf_counter() - start) * 1e3)
    return np.asarray(timings)


def _runners(folder: Path, manifest: dict, mode_key: str) -> dict[str, Predictor]:
    _, models = artifacts.load_torch_models(folder)
    runners: dict[str, Predictor] = {
        "pytorch": TorchRunner(models[mode_key]),
        "onnxruntime": OnnxRuntimeRunner(artifacts.model_file(folder, manifest, mode_key,
                                                              "onnx_sim"))}
    entry = next(m for m in manifest["models"] if m["mode_key"] == mode_key)
    if "tensorrt" in entry["files"]:
        from k2muse_learning import trt

        if trt.tensorrt_available():
            runners["tensorrt"] = trt.TensorRTRunner(
                artifacts.model_file(folder, manifest, mode_key, "tensorrt"))
    return runners


def run_report(model_folder: str | os.PathLike, trial_file: str | os.PathLike,
               mode_key: str | None = None, plot_path: str | os.PathLike | None = None,
               repeats: int = 300) -> tuple[str, list[BackendResult]]:
    """Score every backend on one trial; return the mode model used and the results."""
    folder = Path(model_folder)
    manifest = artifacts.load_manifest(folder)
    names = [channel["name"] for channel in manifest["inputs"]]
    legs = load_legs([trial_file], names)
    known = [m["mode_key"] for m in manifest["models"]]
    mode_key = mode_key or legs[0].mode_key
    if mode_key not in known:
        raise ValueError(f"{folder} has no model for mode {mode_key} (has {known}); "
                         "choose one with --mode-key")
    window = manifest["window_length"]
    data = cut_windows(legs, window)
    if len(data) == 0:
        raise ValueError(f"{trial_file}: no complete {window}-sample window with a target")
    measured = data.targets[:, 0]
    runners = _runners(folder, manifest, mode_key)
    estimates = {name: predict(runner, data.inputs, batch_size=512)
                 for name, runner in runners.items()}
    results = []
    for name, runner in runners.items():
        metrics = regression_metrics(measured, estimates[name])
        latency = single_window_latency_ms(runner, data.inputs, repeats)
        results.append(BackendResult(
            backend=name, rmse_nm_per_kg=metrics["rmse_nm_per_kg"], r2=metrics["r2"],
            max_abs_diff_vs_torch=float(np.max(np.abs(estimates[name] - estimates["pytorch"]))),
            latency_p50_ms=float(np.percentile(latency, 50)),
            latency_p99_ms=float(np.percentile(latency, 99))))
    if plot_path:
        plot_estimates(plot_path, data, legs, estimates,
                       f"{Path(trial_file).stem} - model {mode_key}")
    return mode_key, results


def plot_estimates(path: str | os.PathLike, data: WindowSet, legs: list[LegSeries],
                   estimates: dict[str, np.ndarray], title: str) -> Path:
    """Estimated vs measured hip moment over time, one panel per leg."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    shown = sorted(set(data.leg_index.tolist()))
    figure, axes = plt.subplots(len(shown), 1, figsize=(11, 3.2 * len(shown)), squeeze=False)
    for axis, index in zip(axes[:, 0], shown, strict=True):
        rows = data.leg_index == index
        time_s = data.end_index[rows] / legs[index].sample_rate_hz
        axis.plot(time_s, data.targets[rows, 0], color="black", lw=1.5, label="measured")
        for name, values in estimates.items():
            axis.plot(time_s, values[rows], lw=1, label=name)
        axis.set_ylabel(f"{legs[index].side} hip moment (N·m/kg)")
        axis.legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("time since trigger (s)")
    axes[0, 0].set_title(title)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # an interrupted save never leaves a truncated PNG
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
    return path


def format_table(mode_key: str, results: list[BackendResult]) -> str:
    """Plain-text table of the backend results."""
    lines = [f"model {mode_key}",
             f"{'backend':<12} {'RMSE N*m/kg':>12} {'R2':>7} {'max|d| vs torch':>16} "
             f"{'p50 ms':>8} {'p99 ms':>8}"]
    for r in results:
        lines.append(f"{r.backend:<12} {r.rmse_nm_per_kg:>12.4f} {r.r2:>7.3f} "
                     f"{r.max_abs_diff_vs_torch:>16.2e} {r.latency_p50_ms:>8.3f} "
                     f"{r.latency_p99_ms:>8.3f}")
    return "\n".join(lines)
