"""Metrics and the loop that fits a model on every split of a protocol.

Predictions of all folds are pooled per (participant, test condition) before scoring, so a
participant's score covers each of their test trials exactly once; the summary is then the
mean and SD of those per-participant scores, as the K2MUSE paper reports them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    r2_score,
    root_mean_squared_error,
)

from .dataset import JOINTS, TrialFeatures
from .models import TrialModel
from .phases import PHASE_NAMES
from .protocols import Split
from .rows import finite_rows, valid_target_rows


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE (deg), R² and RMSE normalised by the measured range (%) per joint."""
    out = {}
    for j, joint in enumerate(JOINTS):
        truth, pred = y_true[:, j], y_pred[:, j]
        rmse = float(root_mean_squared_error(truth, pred)) if truth.size else float("nan")
        span = float(np.ptp(truth))
        out[f"rmse_deg_{joint}"] = rmse
        out[f"r2_{joint}"] = float(r2_score(truth, pred)) if truth.size > 1 else float("nan")
        out[f"nrmse_pct_{joint}"] = 100.0 * rmse / span if span > 0 else float("nan")
    return out


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(PHASE_NAMES)
) -> dict[str, float | np.ndarray]:
    """Accuracy, macro-F1 over the phases present, and the confusion matrix (rows: truth)."""
    labels = np.arange(n_classes)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0)
        ),
        "confusion": confusion_matrix(y_true, y_pred, labels=labels),
    }


def task_targets(trial: TrialFeatures, task: str) -> np.ndarray:
    """Targets of a trial: sagittal angles (deg) or phase labels."""
    return trial.angles_deg if task == "regression" else trial.phases


@dataclass
class ProtocolResult:
    """Per-participant metrics of one model on one modality under one protocol."""

    rows: list[dict]
    confusion: dict[tuple[str, str], np.ndarray]
    fit_seconds: float
    predict_seconds: float


def evaluate(
    build: Callable[[], TrialModel],
    trials: Sequence[TrialFeatures],
    splits: Sequence[Split],
    modality: str,
    task: str,
) -> ProtocolResult:
    """Fit a fresh model per split and score the pooled test predictions per participant.

    Trials lacking the modality are left out of both sides. Scored rows are those with finite
    features and a valid target, identical for every model given the same data.
    """
    features = [t.features(modality) for t in trials]
    truth: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    preds: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    fit_s = predict_s = 0.0
    for split in splits:
        train = [i for i in split.train if features[i] is not None]
        tests = {c: [i for i in idx if features[i] is not None] for c, idx in split.test.items()}
        test_all = [i for idx in tests.values() for i in idx]
        if not train or not test_all:
            continue
        model = build()
        start = time.perf_counter()
        model.fit([features[i] for i in train], [task_targets(trials[i], task) for i in train])
        fit_s += time.perf_counter() - start
        start = time.perf_counter()
        predicted = model.predict([features[i] for i in test_all])
        predict_s += time.perf_counter() - start
        for i, pred in zip(test_all, predicted, strict=True):
            target = task_targets(trials[i], task)
            rows = finite_rows(features[i]) & valid_target_rows(target, task)
            key = (trials[i].participant, trials[i].condition)
            truth[key].append(target[rows])
            preds[key].append(pred[rows])
    rows, confusion = [], {}
    for key in sorted(truth):
        y_true, y_pred = np.concatenate(truth[key]), np.concatenate(preds[key])
        if y_true.size == 0:
            continue
        if task == "regression":
            metrics = regression_metrics(y_true, y_pred)
        else:
            metrics = classification_metrics(y_true, y_pred)
            confusion[key] = metrics.pop("confusion")
        rows.append({"participant": key[0], "condition": key[1], "rows": len(y_true), **metrics})
    return ProtocolResult(rows, confusion, fit_s, predict_s)


def summarise(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample SD across participants (SD 0 for a single participant), ignoring NaN."""
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if finite.size == 0:
        return float("nan"), float("nan")
    return float(finite.mean()), float(finite.std(ddof=1)) if finite.size > 1 else 0.0
