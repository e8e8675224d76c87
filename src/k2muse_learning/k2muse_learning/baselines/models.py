"""Regressors and classifiers behind one trial-aware interface.

Every model is fitted on a list of per-trial feature matrices and targets and predicts one
array per trial. Tabular scikit-learn models see the valid rows stacked; the PyTorch sequence
models (:mod:`.sequence`) see, for each row, the rows before it *in the same trial*, so no
context ever crosses a trial boundary. Invalid targets are NaN (regression) or negative
(classification); rows with a non-finite feature are neither fitted nor predicted.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from .rows import empty_prediction, finite_rows, valid_target_rows
from .sequence import SEQUENCE_ARCHITECTURES, SequenceModel

TASKS = ("regression", "classification")


class TrialModel(Protocol):
    """What protocols need from a model: fit on trials, predict per trial."""

    def fit(self, features: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> TrialModel:
        """Fit on per-trial (rows, features) and targets."""

    def predict(self, features: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One prediction array per trial; rows with non-finite features get none."""
        """One prediction array per trial (NaN / -1 on rows that cannot be predicted)."""


#: Reference predictors (training mean angle, most frequent phase) that a model must beat.
REFERENCE_MODELS = ("mean", "majority")


class TabularModel:
    """A scikit-learn estimator fitted on the stacked valid rows of all training trials.

    ``max_train_rows`` caps the training set by a seeded random subsample, which keeps
    kernel methods (SVM) tractable without changing what is evaluated.
    """

    def __init__(self, estimator, task: str, max_train_rows: int | None = None, seed: int = 0):
        self.estimator = estimator
        self.task = task
        self.max_train_rows = max_train_rows
        self.seed = seed

    def fit(self, features: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> TabularModel:
        """Fit on the valid rows of all trials stacked."""
        x = np.concatenate(list(features))
        y = np.concatenate(list(targets))
        rows = np.flatnonzero(finite_rows(x) & valid_target_rows(y, self.task))
        if rows.size == 0:
            raise ValueError("no training rows with finite features and valid targets")
        if self.max_train_rows is not None and rows.size > self.max_train_rows:
            rng = np.random.default_rng(self.seed)
            rows = np.sort(rng.choice(rows, self.max_train_rows, replace=False))
        with warnings.catch_warnings():
            # Iteration caps are a deliberate time budget (config); the scores show the cost.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.estimator.fit(x[rows], y[rows])
        self._target_shape = y.shape[1:]
        return self

    def predict(self, features: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One prediction array per trial; rows with non-finite features get none."""
        out = []
        for x in features:
            rows = finite_rows(x)
            pred = empty_prediction(len(x), self._target_shape, self.task)
            if rows.any():
                pred[rows] = np.asarray(self.estimator.predict(x[rows])).reshape(pred[rows].shape)
            out.append(pred)
        return out


def _scaled(*steps):
    return make_pipeline(StandardScaler(), *steps)


def _standardised_targets(regressor):
    """Standardise the angles too, so penalties and learning rates see unit-scale targets."""
    return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())


def _regressors(seed: int) -> dict[str, Callable[[], Any]]:
    return {
        "mean": DummyRegressor,
        "ridge": lambda: _scaled(Ridge(alpha=1.0)),
        "random_forest": lambda: RandomForestRegressor(
            n_estimators=60, min_samples_leaf=3, max_features=0.33, n_jobs=-1, random_state=seed
        ),
        "kernel_ridge": lambda: _scaled(
            Nystroem(kernel="rbf", gamma=None, n_components=300, random_state=seed),
            Ridge(alpha=1.0),
        ),
        "mlp": lambda: _scaled(
            MLPRegressor(
                hidden_layer_sizes=(128, 64),
                alpha=1e-3,
                learning_rate_init=1e-3,
                max_iter=200,
                early_stopping=True,
                random_state=seed,
            )
        ),
    }


def _classifiers(seed: int) -> dict[str, Callable[[], Any]]:
    return {
        "majority": lambda: DummyClassifier(strategy="most_frequent"),
        "lda": lambda: _scaled(LinearDiscriminantAnalysis()),
        "svm": lambda: _scaled(SVC(kernel="rbf", C=10.0, gamma="scale")),
        "random_forest": lambda: RandomForestClassifier(
            n_estimators=100, min_samples_leaf=2, n_jobs=-1, random_state=seed
        ),
        "knn": lambda: _scaled(KNeighborsClassifier(n_neighbors=7)),
        "mlp": lambda: _scaled(
            MLPClassifier(
                hidden_layer_sizes=(128, 64),
                alpha=1e-3,
                max_iter=200,
                early_stopping=True,
                random_state=seed,
            )
        ),
    }


#: Default training-row caps for models whose cost grows faster than linearly.
DEFAULT_MAX_TRAIN_ROWS = {"svm": 4000, "kernel_ridge": 20000}


def model_names(task: str) -> list[str]:
    """Every model name available for a task, tabular first."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    tabular = _regressors(0) if task == "regression" else _classifiers(0)
    return [*tabular, *SEQUENCE_ARCHITECTURES]


def build_model(
    task: str, name: str, seed: int = 0, params: dict[str, Any] | None = None
) -> TrialModel:
    """Build a fresh model by name; ``params`` override its hyper-parameters.

    For scikit-learn models ``params`` go through ``set_params`` (pipeline step names, e.g.
    ``ridge__alpha``), plus ``max_train_rows``; for sequence models they are constructor
    arguments of :class:`~.sequence.SequenceModel`.
    """
    params = dict(params or {})
    if name not in model_names(task):
        raise ValueError(f"unknown {task} model {name!r}; choose from {model_names(task)}")
    if name in SEQUENCE_ARCHITECTURES:
        return SequenceModel(architecture=name, task=task, seed=seed, **params)
    factories = _regressors(seed) if task == "regression" else _classifiers(seed)
    max_rows = params.pop("max_train_rows", DEFAULT_MAX_TRAIN_ROWS.get(name))
    estimator = factories[name]()
    if params:
        estimator.set_params(**params)
    if task == "regression":
        estimator = _standardised_targets(estimator)
    return TabularModel(estimator, task, max_train_rows=max_rows, seed=seed)
