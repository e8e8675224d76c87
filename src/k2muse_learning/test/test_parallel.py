"""Fold trainings and baseline combinations run through joblib give the sequential results."""

import joblib
import numpy as np
import pytest
import torch
from k2muse_dataset.process import process_release
from k2muse_dataset.synth import generate_release
from k2muse_learning.parallel import _result_form, run_all, threads_per_job
from k2muse_learning.training import TrainingConfig, plan_folds, train_all, train_groups
from k2muse_learning.windows import load_legs

NAMES = ["hip_angle", "hip_velocity"]
SMALL = TrainingConfig(window_length=50, epochs=2, patience=2, threads=1, folds=3,
                       targets_per_window=20, windows_per_epoch=64,
                       architecture={"channels": 8, "levels": 3, "kernel_size": 4,
                                     "dropout": 0.0})


@pytest.fixture(scope="module")
def legs(tmp_path_factory):
    root = tmp_path_factory.mktemp("k2muse")
    generate_release(root / "release", participants=["P01", "P02"], mode_keys=["LG_0", "AS_5"],
                     speeds=[1.0], trials=3, duration_s=10.0, seed=5)
    process_release(root / "release", root / "out", jobs=1)
    return load_legs(root / "out" / "trials", NAMES)


def subject(legs, participant):
    return [leg for leg in legs if leg.participant == participant]


def same_results(a, b):
    assert [m.mode_key for m in a] == [m.mode_key for m in b]
    for x, y in zip(a, b, strict=True):
        assert [f.rmse_nm_per_kg for f in x.folds] == [f.rmse_nm_per_kg for f in y.folds]
        assert x.best_fold == y.best_fold
        for key, value in x.model.state_dict().items():
            assert torch.equal(value, y.model.state_dict()[key]), key


@pytest.fixture(scope="module")
def sequential(legs):
    return train_all(subject(legs, "P01"), SMALL, show_progress=False)


def test_plan_covers_every_mode_and_fold_once(legs):
    tasks = plan_folds(subject(legs, "P01"), SMALL, "P01")
    assert [(t.mode_key, t.fold) for t in tasks] == [(m, f) for m in ("AS_5", "LG_0")
                                                     for f in range(3)]
    for task in tasks:  # held-out trials never train
        assert not {leg.trial_id for leg in task.train} & {leg.trial_id for leg in task.test}


def test_local_processes_give_the_sequential_results(legs, sequential):
    parallel = train_all(subject(legs, "P01"), SMALL, show_progress=False, jobs=2)
    same_results(sequential, parallel)
    assert all(np.isfinite(f.rmse_nm_per_kg) for m in parallel for f in m.folds)


def test_subjects_share_one_pool(legs, sequential):
    grouped = train_groups({"P01": subject(legs, "P01"), "P02": subject(legs, "P02")}, SMALL,
                           show_progress=False, jobs=2)
    assert set(grouped) == {"P01", "P02"}
    same_results(sequential, grouped["P01"])
    same_results(train_all(subject(legs, "P02"), SMALL, show_progress=False), grouped["P02"])


def test_dask_local_cluster_gives_the_sequential_results(legs, sequential):
    pytest.importorskip("distributed", reason="dask distributed is not installed")
    on_cluster = train_all(subject(legs, "P01"), SMALL, show_progress=False, jobs=2,
                           backend="dask")
    same_results(sequential, on_cluster)


def test_ray_local_cluster_gives_the_sequential_results(legs, sequential):
    # Ray is optional and not in tools/requirements.txt (a large dependency): this runs where
    # it is installed. It found that joblib's Ray backend cannot hand out results one by one.
    pytest.importorskip("ray.util.joblib", reason="ray is not installed")
    on_cluster = train_all(subject(legs, "P01"), SMALL, show_progress=False, jobs=2,
                           backend="ray")
    same_results(sequential, on_cluster)


def test_engines_that_cannot_stream_results_get_them_as_one_list():
    # joblib's multiprocessing pool has Ray's limitation (Ray's backend is built on it)
    with joblib.parallel_config(backend="multiprocessing", n_jobs=2):
        assert _result_form() == "list"
    with joblib.parallel_config(backend="loky", n_jobs=2):
        assert _result_form() == "generator"


def test_run_all_refuses_bad_arguments():
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        list(run_all(abs, [1], jobs=0))
    with pytest.raises(ValueError, match="unknown parallel backend 'slurm'"):
        list(run_all(abs, [1], jobs=2, backend="slurm"))
    assert list(run_all(abs, [-1, -2], jobs=2)) == [1, 2]
    assert threads_per_job(16, 4) == 4 and threads_per_job(2, 4) == 1


def test_baseline_sweep_in_processes_gives_the_sequential_rows(tmp_path):
    from k2muse_learning.baselines.dataset import FeatureConfig, load_dataset
    from k2muse_learning.baselines.sweep import parse_config, run_sweep

    release = generate_release(tmp_path / "release", participants=["P01", "P02"],
                               conditions=("Ideal", "Fatigue"), mode_keys=("LG_0",), trials=3,
                               duration_s=6.0, seed=2, processed=False)
    process_release(release, tmp_path, jobs=1)
    trials, problems = load_dataset(sorted(tmp_path.rglob("*.h5")), FeatureConfig(), jobs=1)
    assert problems == []
    config = parse_config({"seed": 1, "modalities": ["aus"],
                           "protocols": {"within_subject": {"folds": 3}},
                           "regression": {"models": {"ridge": {}}},
                           "classification": {"models": {"lda": {}}}})
    sequential = run_sweep(config, trials)
    parallel = run_sweep(config, trials, jobs=2)
    assert len(sequential.rows) == len(parallel.rows) > 0
    for a, b in zip(sequential.rows, parallel.rows, strict=True):
        assert a == pytest.approx(b, nan_ok=True)
    assert {k: v.tolist() for k, v in sequential.confusion.items()} == \
        {k: v.tolist() for k, v in parallel.confusion.items()}
