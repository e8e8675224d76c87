"""Evaluation protocols: which trials train a model and which test it.

Splits are made of whole trials, never of windows, so the overlapping windows of one trial can
never sit on both sides of a split. Every split is checked for that on construction.

* ``within_subject``: per participant, k-fold over that participant's trials.
* ``loso``: leave one subject out; train on every other participant.
* ``cross_condition``: per participant, train on the training condition (Ideal) and test on
  each other condition (Fatigue, Shift*, InterDay): what K2MUSE was recorded to study.

Test trials are grouped by condition, so one fit yields a score per test condition.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold

from .dataset import TrialFeatures

PROTOCOLS = ("within_subject", "loso", "cross_condition")


class LeakageError(AssertionError):
    """A trial sits in both the training and the test set of a split."""


@dataclass(frozen=True)
class Split:
    """One fit: training trial indices and test trial indices grouped by test condition."""

    protocol: str
    participant: str
    fold: int
    train: tuple[int, ...]
    test: dict[str, tuple[int, ...]]

    def check(self, trials: Sequence[TrialFeatures]) -> None:
        """Raise LeakageError if any trial (by index or by file key) is on both sides."""
        test_indices = {i for group in self.test.values() for i in group}
        train_keys = {trials[i].key for i in self.train}
        test_keys = {trials[i].key for i in test_indices}
        overlap = sorted(train_keys & test_keys) or sorted(set(self.train) & test_indices)
        if overlap:
            raise LeakageError(
                f"{self.protocol} fold {self.fold} of {self.participant}: trials in both train "
                f"and test: {overlap}"
            )


def _by_participant(
    trials: Sequence[TrialFeatures], conditions: Sequence[str] | None
) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for index, trial in enumerate(trials):
        if not conditions or trial.condition in conditions:
            groups[trial.participant].append(index)
    return dict(sorted(groups.items()))


def _group_by_condition(
    trials: Sequence[TrialFeatures], indices: Sequence[int]
) -> dict[str, tuple[int, ...]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i in indices:
        groups[trials[i].condition].append(i)
    return {condition: tuple(members) for condition, members in sorted(groups.items())}


def within_subject_splits(
    trials: Sequence[TrialFeatures],
    folds: int = 5,
    conditions: Sequence[str] | None = ("Ideal",),
    seed: int = 0,
) -> list[Split]:
    """k-fold over each participant's trials; fewer trials than folds -> one trial per fold."""
    if folds < 2:
        raise ValueError(f"within-subject k-fold needs at least 2 folds, got {folds}")
    splits = []
    for participant, members in _by_participant(trials, conditions).items():
        if len(members) < 2:
            continue
        kfold = KFold(n_splits=min(folds, len(members)), shuffle=True, random_state=seed)
        members_array = np.asarray(members)
        for fold, (train, test) in enumerate(kfold.split(members_array)):
            splits.append(
                Split(
                    "within_subject",
                    participant,
                    fold,
                    tuple(members_array[train].tolist()),
                    _group_by_condition(trials, members_array[test].tolist()),
                )
            )
    return splits


def loso_splits(
    trials: Sequence[TrialFeatures], conditions: Sequence[str] | None = ("Ideal",)
) -> list[Split]:
    """Leave one subject out: test on one participant, train on all the others."""
    groups = _by_participant(trials, conditions)
    splits = []
    if len(groups) < 2:
        return splits
    for fold, (participant, members) in enumerate(groups.items()):
        train = tuple(i for other, idx in groups.items() if other != participant for i in idx)
        splits.append(
            Split("loso", participant, fold, train, _group_by_condition(trials, members))
        )
    return splits


def cross_condition_splits(
    trials: Sequence[TrialFeatures],
    train_condition: str = "Ideal",
    test_conditions: Sequence[str] | None = None,
) -> list[Split]:
    """Per participant: train on ``train_condition``, test on each other condition.

    ``test_conditions`` None means every condition other than the training one.
    """
    splits = []
    for participant, members in _by_participant(trials, None).items():
        train = tuple(i for i in members if trials[i].condition == train_condition)
        test = [
            i
            for i in members
            if trials[i].condition != train_condition
            and (not test_conditions or trials[i].condition in test_conditions)
        ]
        if train and test:
            splits.append(
                Split(
                    "cross_condition", participant, 0, train, _group_by_condition(trials, test)
                )
            )
    return splits


def make_splits(
    protocol: str, trials: Sequence[TrialFeatures], options: dict, seed: int = 0
) -> list[Split]:
    """Splits of a protocol by name, with its options from the config; all leak-checked."""
    builders = {
        "within_subject": lambda **kw: within_subject_splits(trials, seed=seed, **kw),
        "loso": lambda **kw: loso_splits(trials, **kw),
        "cross_condition": lambda **kw: cross_condition_splits(trials, **kw),
    }
    if protocol not in builders:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
    try:
        splits = builders[protocol](**dict(options or {}))
    except TypeError as exc:
        raise ValueError(f"bad options for protocol {protocol!r}: {exc}") from exc
    for split in splits:
        split.check(trials)
    return splits
