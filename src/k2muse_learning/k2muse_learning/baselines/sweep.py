"""A baseline sweep: every (task, protocol, modality, model) of a config file, one seed.

The config (YAML, see config/baselines.yaml) fixes the data filters, feature windows, protocols
and model hyper-parameters; with the seed it determines every split, subsample and weight
initialisation, so a rerun reproduces the results.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .dataset import JOINTS, MODALITIES, FeatureConfig, TrialFeatures
from .evaluation import evaluate, summarise
from .features import EmgFilterSpec, WindowSpec
from .models import TASKS, build_model, model_names
from .protocols import PROTOCOLS, make_splits

GROUP_KEYS = ("task", "protocol", "condition", "modality", "model")
METRICS = {
    "regression": [f"{m}_{j}" for m in ("rmse_deg", "r2", "nrmse_pct") for j in JOINTS],
    "classification": ["accuracy", "macro_f1"],
}


class ConfigError(ValueError):
    """A sweep config that cannot be used; the message names the offending key."""


@dataclass
class SweepConfig:
    """A parsed, validated sweep config."""

    seed: int = 0
    features: FeatureConfig = field(default_factory=FeatureConfig)
    participants: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    mode_keys: list[str] = field(default_factory=list)
    modalities: list[str] = field(default_factory=lambda: list(MODALITIES))
    protocols: dict[str, dict] = field(default_factory=lambda: {p: {} for p in PROTOCOLS})
    models: dict[str, dict[str, dict]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, written next to the results so a run documents itself."""
        data = asdict(self)
        data["features"]["emg_filter"]["band_hz"] = list(self.features.emg_filter.band_hz)
        return data


def _section(raw: dict, key: str, kind: type, default):
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ConfigError(f"'{key}' must be a {kind.__name__}, got {type(value).__name__}")
    return value


def parse_config(raw: dict[str, Any]) -> SweepConfig:
    """Validate a config mapping (as loaded from YAML) and build a SweepConfig."""
    if not isinstance(raw, dict):
        raise ConfigError("config must be a mapping at the top level")
    known = {"seed", "data", "features", "modalities", "protocols", "regression", "classification"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; expected some of {sorted(known)}")
    data = _section(raw, "data", dict, {})
    feats = dict(_section(raw, "features", dict, {}))
    emg = dict(feats.pop("emg", None) or {})
    try:
        if "band_hz" in emg:
            emg["band_hz"] = tuple(float(v) for v in emg["band_hz"])
        window = WindowSpec(
            length_s=float(feats.pop("window_length_s", 0.2)), stride=int(feats.pop("stride", 5))
        )
        features = FeatureConfig(window=window, emg_filter=EmgFilterSpec(**emg), **feats)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad 'features' section: {exc}") from exc
    modalities = list(_section(raw, "modalities", list, list(MODALITIES)))
    bad = [m for m in modalities if m not in MODALITIES]
    if bad:
        raise ConfigError(f"unknown modalities {bad}; expected some of {list(MODALITIES)}")
    protocols = _section(raw, "protocols", dict, {p: {} for p in PROTOCOLS})
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad:
        raise ConfigError(f"unknown protocols {bad}; expected some of {list(PROTOCOLS)}")
    models = {}
    for task in TASKS:
        section = _section(raw, task, dict, {})
        chosen = _section(section, "models", dict, {})
        bad = [m for m in chosen if m not in model_names(task)]
        if bad:
            raise ConfigError(f"unknown {task} models {bad}; choose from {model_names(task)}")
        models[task] = {name: dict(params or {}) for name, params in chosen.items()}
    return SweepConfig(
        seed=int(raw.get("seed", 0)),
        features=features,
        participants=list(data.get("participants") or []),
        conditions=list(data.get("conditions") or []),
        mode_keys=list(data.get("mode_keys") or []),
        modalities=modalities,
        protocols={name: dict(options or {}) for name, options in protocols.items()},
        models=models,
    )


def load_config(path: str | Path, seed: int | None = None) -> SweepConfig:
    """Read a YAML config; ``seed`` (e.g. from the command line) overrides the file's."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from exc
    try:
        config = parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if seed is not None:
        config.seed = int(seed)
    return config


@dataclass
class SweepResult:
    """Per-participant rows, per-model timings and summed confusion matrices of a sweep."""

    rows: list[dict] = field(default_factory=list)
    timings: list[dict] = field(default_factory=list)
    confusion: dict[tuple[str, str, str, str], np.ndarray] = field(default_factory=dict)

    def summary(self) -> list[dict]:
        """Mean and SD across participants for each (task, protocol, condition, modality, model)."""
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for row in self.rows:
            key = tuple(row[k] for k in GROUP_KEYS)
            groups[key].append(row)
        out = []
        for key, members in groups.items():
            entry = dict(zip(GROUP_KEYS, key, strict=True))
            entry["participants"] = len(members)
            for metric in METRICS[key[0]]:
                mean, sd = summarise([m[metric] for m in members])
                entry[f"{metric}_mean"], entry[f"{metric}_sd"] = mean, sd
            out.append(entry)
        return out


@dataclass
class SweepJob:
    """One (task, protocol, modality, model) combination with the data it is scored on."""

    task: str
    protocol: str
    modality: str
    model: str
    params: dict
    seed: int
    trials: Sequence[TrialFeatures]
    splits: list


def run_job(job: SweepJob):
    """Fit and score one combination on every split of its protocol."""
    build = partial(build_model, job.task, job.model, seed=job.seed, params=job.params)
    return evaluate(build, job.trials, job.splits, job.modality, job.task)


def run_sweep(
    config: SweepConfig, trials: Sequence[TrialFeatures], progress: bool = False,
    jobs: int = 1, backend: str = "local", address: str | None = None,
) -> SweepResult:
    """Fit and score every configured combination on the loaded trials.

    Combinations are independent, so they run ``jobs`` at a time through joblib
    (``parallel.run_all``: local processes, or a Dask or Ray cluster), each with its share of
    this machine's cores as torch threads. The result does not depend on ``jobs`` beyond the
    torch models' float rounding: with ``jobs=1`` torch keeps all its threads, and another
    thread count sums in another order (relative differences ~1e-7, more where training
    amplifies them).
    """
    from tqdm import tqdm

    from k2muse_learning.parallel import run_all, threads_per_job

    result = SweepResult()
    splits = {
        name: make_splits(name, trials, options, seed=config.seed)
        for name, options in config.protocols.items()
    }
    combos = [
        SweepJob(task, protocol, modality, model, config.models[task][model], config.seed,
                 trials, splits[protocol])
        for task, chosen in config.models.items()
        for model in chosen
        for protocol in splits
        for modality in config.modalities
    ]
    threads = threads_per_job(os.cpu_count() or 1, jobs) if jobs > 1 else None
    outcomes = run_all(run_job, combos, jobs, backend, threads, address)
    for job, outcome in tqdm(zip(combos, outcomes, strict=True), total=len(combos),
                             desc="sweep", disable=not progress):
        tags = {"task": job.task, "protocol": job.protocol, "modality": job.modality,
                "model": job.model}
        result.rows.extend({**tags, **row} for row in outcome.rows)
        result.timings.append(
            {**tags, "fits": len(job.splits), "fit_s": outcome.fit_seconds,
             "predict_s": outcome.predict_seconds}
        )
        for (_participant, condition), matrix in outcome.confusion.items():
            key = (job.protocol, condition, job.modality, job.model)
            result.confusion[key] = result.confusion.get(key, 0) + matrix
    return result
