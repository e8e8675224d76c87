"""Cross-validated TCN training per subject and walking mode (and leave-one-subject-out).

Protocol of the K2MUSE authors' control demo: for each walking mode (mode_key), 5-fold
cross-validation over the trials (a fold holds out whole trials, both legs), and the model of
the best fold is kept for deployment. The mean and spread over folds are reported too: the
best fold alone is an optimistic estimate. Early stopping watches the last part (in time) of
each training trial, never the held-out trials. Every fold also scores a per-phase
average-curve baseline on the same samples, the reference the TCN has to beat.
"""

from __future__ import annotations

import copy
import csv
import io
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from k2muse_model.tcn import HipMomentTCN, TCNConfig, build_tcn
from sklearn.metrics import r2_score, root_mean_squared_error
from tqdm import tqdm

from k2muse_learning.artifacts import TrainedModel, write_model_folder
from k2muse_learning.windows import LegSeries, check_input_names, cut_windows, finite_runs

SPLITS = ("trials", "subjects")


@dataclass
class TrainingConfig:
    """Everything that determines a training run (read from YAML, stored in the manifest)."""

    window_length: int = 100
    input_names: list[str] = field(default_factory=lambda: ["hip_angle", "hip_velocity"])
    architecture: dict[str, Any] = field(default_factory=lambda: {
        "channels": 32, "levels": 4, "kernel_size": 4, "dropout": 0.05, "weight_norm": True})
    split: str = "trials"
    folds: int = 5
    epochs: int = 40
    patience: int = 6
    batch_size: int = 32
    targets_per_window: int = 100
    windows_per_epoch: int = 600
    learning_rate: float = 5e-3
    weight_decay: float = 1e-5
    validation_fraction: float = 0.2
    seed: int = 0
    threads: int = 2
    mode_keys: list[str] | None = None
    participants: list[str] | None = None
    conditions: list[str] | None = None

    def __post_init__(self) -> None:
        check_input_names(self.input_names)
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        positive = ("window_length", "folds", "epochs", "patience", "batch_size",
                    "targets_per_window", "windows_per_epoch", "threads")
        bad = [name for name in positive if int(getattr(self, name)) < 1]
        if bad or self.folds < 2 or not 0 < self.validation_fraction < 0.5 \
                or self.learning_rate <= 0:
            raise ValueError(f"invalid training config value(s) {bad or ''}: folds >= 2, "
                             "0 < validation_fraction < 0.5, learning_rate > 0 required")
        rf = self.tcn_config.receptive_field
        if rf > self.window_length:
            raise ValueError(f"receptive field {rf} exceeds window_length {self.window_length}"
                             ": reduce levels/kernel_size or lengthen the window")

    @property
    def tcn_config(self) -> TCNConfig:
        """Architecture with input_channels taken from input_names."""
        return TCNConfig.from_dict({**self.architecture,
                                    "input_channels": len(self.input_names)})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TrainingConfig:
        """Build from a dict (YAML), refusing unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training config key(s): {unknown}")
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> TrainingConfig:
        """Read a YAML config file; errors name the file."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            if not isinstance(data, dict):
                raise ValueError("top level must be a mapping")
            return cls.from_mapping(data)
        except (OSError, yaml.YAMLError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for YAML/JSON)."""
        return asdict(self)


def regression_metrics(measured: np.ndarray, estimated: np.ndarray) -> dict[str, float]:
    """RMSE (N·m/kg) and R² (scikit-learn); NaN where undefined (no samples, no spread)."""
    measured, estimated = np.asarray(measured, float), np.asarray(estimated, float)
    if measured.size == 0:
        return {"rmse_nm_per_kg": float("nan"), "r2": float("nan")}
    return {"rmse_nm_per_kg": float(root_mean_squared_error(measured, estimated)),
            "r2": float(r2_score(measured, estimated)) if np.ptp(measured) > 0 else float("nan")}


def predict_leg(model: HipMomentTCN, leg: LegSeries, window_length: int) -> np.ndarray:
    """Estimate at every sample with a full finite window of history (NaN elsewhere).

    Runs each finite stretch through forward_sequence once; identical to running every
    window separately because the receptive field fits in the window.
    """
    estimate = np.full(leg.moment.shape, np.nan, np.float32)
    model.eval()
    with torch.inference_mode():
        for start, stop in finite_runs(np.all(np.isfinite(leg.inputs), axis=0)):
            if stop - start >= window_length:
                run = torch.from_numpy(np.ascontiguousarray(leg.inputs[None, :, start:stop]))
                estimate[start + window_length - 1:stop] = \
                    model.forward_sequence(run)[0, window_length - 1:].numpy()
    return estimate


class AverageCurveBaseline:
    """Mean moment curve over the gait cycle, indexed by a causally estimated phase.

    Fitted on accepted strides of training legs (true phase). At run time the phase is the
    time since the last heel strike over the previous stride's duration, as a real-time
    controller would estimate it; implausible durations fall back to the training mean.
    """

    def __init__(self, bins: int = 100):
        self.bins = bins
        self.curve = np.zeros(bins)
        self.mean_stride = 0.0

    def fit(self, legs: Sequence[LegSeries]) -> AverageCurveBaseline:
        """Average the moment over phase bins of every accepted stride."""
        sums, counts, durations = np.zeros(self.bins), np.zeros(self.bins), []
        for leg in legs:
            for start, stop in zip(leg.heel_strikes[:-1], leg.heel_strikes[1:], strict=True):
                if not np.all(leg.target_mask[start:stop]):
                    continue  # not an accepted stride
                samples = np.arange(start, stop)
                phase_bin = ((samples - start) * self.bins // (stop - start))
                values = leg.moment[samples]
                ok = np.isfinite(values)
                np.add.at(sums, phase_bin[ok], values[ok])
                np.add.at(counts, phase_bin[ok], 1)
                durations.append(stop - start)
        if not durations or np.any(counts == 0):
            raise ValueError("average-curve baseline needs accepted strides covering the cycle")
        self.curve = sums / counts
        self.mean_stride = float(np.mean(durations))
        return self

    def predict_leg(self, leg: LegSeries) -> np.ndarray:
        """Estimate at every sample after the first heel strike (NaN before)."""
        estimate = np.full(leg.moment.shape, np.nan)
        strikes = leg.heel_strikes
        for k, strike in enumerate(strikes):
            stop = strikes[k + 1] if k + 1 < len(strikes) else leg.moment.size
            previous = strike - strikes[k - 1] if k > 0 else 0
            plausible = 0.6 * self.mean_stride < previous < 1.5 * self.mean_stride
            duration = previous if plausible else self.mean_stride
            phase = np.minimum((np.arange(strike, stop) - strike) / duration, 0.999)
            estimate[strike:stop] = self.curve[(phase * self.bins).astype(int)]
        return estimate


@dataclass
class FoldResult:
    """Metrics of one fold on its held-out trials (or subject)."""

    mode_key: str
    fold: int
    held_out: list[str]
    n_samples: int
    rmse_nm_per_kg: float
    r2: float
    baseline_rmse_nm_per_kg: float
    baseline_r2: float
    epochs: int
    train_seconds: float


@dataclass
class ModeResult:
    """All folds of one mode and the model of the best fold."""

    mode_key: str
    folds: list[FoldResult]
    best_fold: int
    model: HipMomentTCN

    @property
    def best(self) -> FoldResult:
        """Fold whose model is kept."""
        return next(f for f in self.folds if f.fold == self.best_fold)


def assign_folds(legs: Sequence[LegSeries], split: str, n_folds: int) -> dict[str, int]:
    """Map each trial to a fold; both legs of a trial always share their fold.

    split="trials": within each (participant, condition, speed) the trials sorted by number
    go to folds 0, 1, ... (fold k holds trial k+1 of every speed when there are 5 trials);
    an unknown (NaN) speed is one group, as for files from ``k2muse import``.
    split="subjects": one fold per participant (leave-one-subject-out).
    """
    trials = {leg.trial_id: leg for leg in legs}
    if split == "subjects":
        subjects = sorted({leg.participant for leg in trials.values()})
        return {tid: subjects.index(leg.participant) for tid, leg in trials.items()}
    groups: dict[tuple, list[LegSeries]] = {}
    for leg in trials.values():
        speed = None if np.isnan(leg.speed_m_s) else leg.speed_m_s
        groups.setdefault((leg.participant, leg.condition, speed), []).append(leg)
    folds = {}
    for members in groups.values():
        for position, leg in enumerate(sorted(members, key=lambda m: (m.trial, m.trial_id))):
            folds[leg.trial_id] = position % n_folds
    return folds


def _normalise(model: HipMomentTCN, legs: Sequence[LegSeries]) -> None:
    inputs = np.concatenate([leg.inputs[:, leg.target_mask] for leg in legs], axis=1)
    inputs = inputs[:, np.all(np.isfinite(inputs), axis=0)]
    targets = np.concatenate([leg.moment[leg.target_mask] for leg in legs])
    model.set_normalisation(inputs.mean(axis=1), inputs.std(axis=1) + 1e-6,
                            float(targets.mean()), float(targets.std()) + 1e-6)


def _validation_split(legs: Sequence[LegSeries], fraction: float
                      ) -> tuple[list[LegSeries], list[LegSeries]]:
    """Train on the first part of each leg's targets, validate on its last `fraction`."""
    train, validation = [], []
    for leg in legs:
        targets = np.flatnonzero(leg.target_mask)
        if targets.size == 0:
            continue
        cut = int(targets[int(targets.size * (1.0 - fraction))])
        train.append(leg.head(cut))
        validation.append(leg.tail(cut))
    return train, validation


def _pooled(model_or_fn: Callable[[LegSeries], np.ndarray], legs: Sequence[LegSeries]
            ) -> tuple[np.ndarray, np.ndarray]:
    measured, estimated = [], []
    for leg in legs:
        estimate = model_or_fn(leg)
        keep = leg.target_mask & np.isfinite(estimate)
        measured.append(leg.moment[keep])
        estimated.append(estimate[keep])
    return np.concatenate(measured), np.concatenate(estimated)


def fit_tcn(legs: Sequence[LegSeries], config: TrainingConfig, seed: int
            ) -> tuple[HipMomentTCN, int]:
    """Train one model with early stopping on the held-back tail of each leg.

    Returns the model at its best validation epoch and the number of epochs run.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_legs, val_legs = _validation_split(legs, config.validation_fraction)
    window, per_window = config.window_length, config.targets_per_window
    data = cut_windows(train_legs, window, hop=max(1, per_window // 2),
                       targets_per_window=per_window)
    if len(data) == 0:
        raise ValueError(f"no training windows of {window} samples in {len(legs)} legs")
    model = build_tcn(config.tcn_config)
    _normalise(model, train_legs)
    inputs, targets = torch.from_numpy(data.inputs), torch.from_numpy(data.targets)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate,
                                 weight_decay=config.weight_decay)
    scale = float(model.output_std)
    best_rmse, best_state, stale, epoch = np.inf, copy.deepcopy(model.state_dict()), 0, 0
    for epoch in range(1, config.epochs + 1):  # noqa: B007 (epoch is reported)
        model.train()
        order = rng.permutation(len(data))[:config.windows_per_epoch]
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            estimate = model.forward_sequence(inputs[batch])[:, window - 1:]
            target = targets[batch]
            counted = torch.isfinite(target)
            loss = (((estimate - torch.nan_to_num(target)) / scale)[counted] ** 2).mean()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        rmse = regression_metrics(*_pooled(lambda leg: predict_leg(model, leg, window),
                                           val_legs))["rmse_nm_per_kg"]
        if rmse < best_rmse - 1e-5:
            best_rmse, best_state, stale = rmse, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    model.load_state_dict(best_state)
    return model.eval(), epoch


def evaluate_fold(model: HipMomentTCN, baseline: AverageCurveBaseline,
                  legs: Sequence[LegSeries], window_length: int) -> dict[str, float]:
    """TCN and baseline metrics on the samples where both give an estimate."""
    measured, tcn, reference = [], [], []
    for leg in legs:
        estimate = predict_leg(model, leg, window_length)
        curve = baseline.predict_leg(leg)
        keep = leg.target_mask & np.isfinite(estimate) & np.isfinite(curve)
        measured.append(leg.moment[keep])
        tcn.append(estimate[keep])
        reference.append(curve[keep])
    measured = np.concatenate(measured)
    ours = regression_metrics(measured, np.concatenate(tcn))
    theirs = regression_metrics(measured, np.concatenate(reference))
    return {**ours, "baseline_rmse_nm_per_kg": theirs["rmse_nm_per_kg"],
            "baseline_r2": theirs["r2"], "n_samples": int(measured.size)}


@dataclass
class FoldTask:
    """One fold training: what a worker process needs, and nothing it does not."""

    group: str
    mode_key: str
    fold: int
    train: list[LegSeries]
    test: list[LegSeries]
    config: TrainingConfig


def plan_folds(legs: Sequence[LegSeries], config: TrainingConfig, group: str = ""
               ) -> list[FoldTask]:
    """Every (mode, fold) training of ``legs``, modes and folds in sorted order."""
    tasks = []
    for mode_key in sorted({leg.mode_key for leg in legs}):
        mode_legs = [leg for leg in legs if leg.mode_key == mode_key]
        folds = assign_folds(mode_legs, config.split, config.folds)
        if len(set(folds.values())) < 2:
            raise ValueError(f"mode {mode_key}: {len(folds)} trial(s) cannot be split into "
                             f"folds (split={config.split}); need trials of at least 2 folds")
        for fold in sorted(set(folds.values())):
            tasks.append(FoldTask(
                group, mode_key, fold,
                train=[leg for leg in mode_legs if folds[leg.trial_id] != fold],
                test=[leg for leg in mode_legs if folds[leg.trial_id] == fold], config=config))
    return tasks


def run_fold(task: FoldTask) -> tuple[FoldResult, dict[str, torch.Tensor]]:
    """Train and score one fold; the model comes back as its state dict (cheap to send)."""
    started = time.perf_counter()
    model, epochs = fit_tcn(task.train, task.config, seed=task.config.seed + task.fold)
    seconds = time.perf_counter() - started
    baseline = AverageCurveBaseline().fit(task.train)
    metrics = evaluate_fold(model, baseline, task.test, task.config.window_length)
    held_out = sorted({Path(leg.trial_id).stem for leg in task.test})
    result = FoldResult(mode_key=task.mode_key, fold=task.fold, held_out=held_out,
                        epochs=epochs, train_seconds=seconds, **metrics)
    return result, model.state_dict()


def count_folds(legs: Sequence[LegSeries], config: TrainingConfig) -> int:
    """Number of fold trainings train_all will run (for progress bars and estimates)."""
    return len(plan_folds(legs, config))


def train_groups(groups: Mapping[str, Sequence[LegSeries]], config: TrainingConfig,
                 show_progress: bool = True, jobs: int = 1, backend: str = "local",
                 address: str | None = None) -> dict[str, list[ModeResult]]:
    """Cross-validate every mode of every group (e.g. subject) in one pool of fold trainings.

    Groups x modes x folds are independent, so they run ``jobs`` at a time through joblib
    (``parallel.run_all``: local processes, or a Dask or Ray cluster via ``backend`` and
    ``address``), each with ``config.threads // jobs`` torch threads. Per mode the model of
    the fold with the lowest RMSE is kept. Results do not depend on ``jobs`` for the same
    threads per fold; a different thread count changes the order of torch's float sums,
    which training carries into weights that differ in the last digits.
    """
    from k2muse_learning.parallel import run_all, threads_per_job

    tasks = [task for name, legs in groups.items() for task in plan_folds(legs, config, name)]
    done: dict[tuple[str, str], list[tuple[FoldResult, dict]]] = {}
    outcomes = run_all(run_fold, tasks, jobs, backend, threads_per_job(config.threads, jobs),
                       address)
    with tqdm(total=len(tasks), desc="folds", unit="fold", disable=not show_progress) as bar:
        for task, (result, state) in zip(tasks, outcomes, strict=True):
            done.setdefault((task.group, task.mode_key), []).append((result, state))
            bar.set_postfix(mode=task.mode_key, fold=task.fold,
                            rmse=f"{result.rmse_nm_per_kg:.3f}")
            bar.update()
    results: dict[str, list[ModeResult]] = {name: [] for name in groups}
    for (group, mode_key), folds in done.items():
        best, state = min(folds, key=lambda item: item[0].rmse_nm_per_kg)
        model = build_tcn(config.tcn_config)
        model.load_state_dict(state)
        results[group].append(ModeResult(mode_key, [r for r, _ in folds], best.fold,
                                          model.eval()))
    return results


def train_all(legs: Sequence[LegSeries], config: TrainingConfig, show_progress: bool = True,
              jobs: int = 1, backend: str = "local", address: str | None = None
              ) -> list[ModeResult]:
    """Cross-validate every mode found in legs (one model per mode_key); see train_groups."""
    return train_groups({"": legs}, config, show_progress, jobs, backend, address)[""]


TABLE_COLUMNS = ("mode_key", "fold", "best", "n_samples", "rmse_nm_per_kg", "r2",
                 "baseline_rmse_nm_per_kg", "baseline_r2", "epochs", "train_seconds", "held_out")


def results_rows(results: Sequence[ModeResult]) -> list[dict[str, Any]]:
    """One row per fold plus a mean ± sd row per mode."""
    rows = []
    for mode in results:
        for fold in mode.folds:
            row = asdict(fold)
            row["best"] = fold.fold == mode.best_fold
            row["held_out"] = " ".join(fold.held_out)
            rows.append(row)
        summary = {"mode_key": mode.mode_key, "fold": "mean±sd", "best": "",
                   "held_out": "", "n_samples": sum(f.n_samples for f in mode.folds)}
        for column in ("rmse_nm_per_kg", "r2", "baseline_rmse_nm_per_kg", "baseline_r2",
                       "epochs", "train_seconds"):
            values = np.array([getattr(f, column) for f in mode.folds], float)
            summary[column] = f"{values.mean():.4g}±{values.std():.2g}"
        rows.append(summary)
    return rows


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def results_csv(results: Sequence[ModeResult]) -> str:
    """Results table as CSV text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in results_rows(results):
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def results_markdown(results: Sequence[ModeResult]) -> str:
    """Results table as a Markdown table."""
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |",
             "|" + "---|" * len(TABLE_COLUMNS)]
    for row in results_rows(results):
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in TABLE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_trained_folder(folder: str | os.PathLike, results: Sequence[ModeResult],
                         config: TrainingConfig, legs: Sequence[LegSeries], *,
                         model_id: str | None = None, tensorrt_precision: str | None = None,
                         overwrite: bool = False, parity_count: int = 256) -> Path:
    """Write the best-fold model of every mode as a model folder with the results tables.

    Parity of every exported backend is checked on real windows of the training trials.
    """
    windows = cut_windows(legs, config.window_length, hop=config.window_length // 2)
    picks = np.random.default_rng(config.seed).permutation(len(windows))[:parity_count]
    trained = [TrainedModel(m.mode_key, m.model, m.best_fold,
                            {"rmse_nm_per_kg": m.best.rmse_nm_per_kg, "r2": m.best.r2,
                             "baseline_rmse_nm_per_kg": m.best.baseline_rmse_nm_per_kg,
                             "cv_mean_rmse_nm_per_kg": float(np.mean(
                                 [f.rmse_nm_per_kg for f in m.folds]))})
               for m in results]
    participants = sorted({leg.participant for leg in legs})
    return write_model_folder(
        folder, trained, window_length=config.window_length,
        sample_rate_hz=legs[0].sample_rate_hz, input_names=config.input_names,
        synthetic_training_data=any(leg.synthetic for leg in legs),
        model_id=model_id or f"{'-'.join(participants[:3])}-tcn-{time.strftime('%Y%m%dT%H%M')}",
        parity_windows=windows.inputs[picks] if len(picks) else None,
        tensorrt_precision=tensorrt_precision,
        training={"config": config.to_dict(), "participants": participants,
                  "split": config.split, "protocol": "best fold per mode kept"},
        extra_files={"results/folds.csv": results_csv(results).encode(),
                     "results/folds.md": results_markdown(results).encode(),
                     "config.yaml": yaml.safe_dump(config.to_dict(), sort_keys=False).encode()},
        overwrite=overwrite)
